package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
)

// apiLink is a link as the API shows it (the same view webhooks send).
type apiLink = link.View

func toAPILink(l *db.Link, lastUsed time.Time) apiLink { return link.ViewOf(l, lastUsed) }

// linkList is one page of GET /api/v1/links.
type linkList struct {
	Links      []apiLink `json:"links"`
	NextCursor *string   `json:"next_cursor"`
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func badRequest(detail string) error {
	return apperr.Newf(apperr.InvalidRequest, detail, errors.New(detail))
}

func (s *Server) apiListLinks(c echo.Context) error {
	q := c.QueryParams() // only known names, each once: see allowQuery on the route
	f := db.LinkFilter{Status: q.Get("status"), OwnerSub: q.Get("owner_sub"), After: q.Get("cursor"),
		ExternalRef: q.Get("external_ref"), Limit: defaultPageSize}
	if _, set := q["external_ref"]; set {
		if err := linksession.ValidExternalRef(f.ExternalRef); err != nil {
			return badRequest("external_ref must be 1 to 200 printable characters.")
		}
	}
	switch f.Status {
	case "", db.StatusActive, db.StatusNeedsReauth, db.StatusRevoked:
	default:
		return badRequest("status must be active, needs_reauth or revoked.")
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return badRequest("limit must be a whole number from 1 to " + strconv.Itoa(maxPageSize) + ".")
		}
		f.Limit = n
	}
	if f.After != "" {
		b, ok := db.ParseLinkID(f.After)
		if !ok {
			return badRequest("cursor is not one this API returned.")
		}
		f.After = db.FormatLinkID(b)
	}
	if !validOwnerSub(f.OwnerSub) {
		return badRequest("owner_sub must be valid UTF-8 without control characters, at most " + strconv.Itoa(maxOwnerSub) + " bytes.")
	}
	rows, err := s.store.ListLinks(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := linkList{Links: make([]apiLink, 0, len(rows))}
	for i := range rows {
		out.Links = append(out.Links, toAPILink(&rows[i].Link, rows[i].LastUsedAt))
	}
	if len(rows) == f.Limit {
		next := rows[len(rows)-1].ID
		out.NextCursor = &next
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiGetLink(c echo.Context) error {
	l := apiLinkOf(c)
	lastUsed, err := s.store.LinkLastUsed(c.Request().Context(), l.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPILink(l, lastUsed))
}

// apiDeleteLink unlinks from the team's side: the same as the owner's
// revoke. Deleting a revoked link answers 200 again with the link.
func (s *Server) apiDeleteLink(c echo.Context) error {
	client := apiClientOf(c)
	ctx := c.Request().Context()
	l, err := s.links.Revoke(ctx, c.Param("id"), "api:"+client.Name)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "link revoked by api client", "link_id", l.ID, "api_client", client.Name)
	lastUsed, err := s.store.LinkLastUsed(ctx, l.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPILink(l, lastUsed))
}
