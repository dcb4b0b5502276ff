package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/linksession"
)

// linkSessionRequest is the body of POST /api/v1/link-sessions.
type linkSessionRequest struct {
	ExternalRef string    `json:"external_ref"`
	ReturnURL   string    `json:"return_url"`
	Scopes      *[]string `json:"scopes"`
	State       string    `json:"state"`
}

type linkSessionResponse struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

type claimRequest struct {
	Code        string `json:"code"`
	ExternalRef string `json:"external_ref"`
}

// apiCreateLinkSession starts a link for one of the team's users: the
// answer's url is where the backend sends that user's browser.
func (s *Server) apiCreateLinkSession(c echo.Context) error {
	var in linkSessionRequest
	if err := readJSONBody(c.Request(), &in, "external_ref", "return_url", "scopes", "state"); err != nil {
		return err
	}
	req := linksession.CreateRequest{ExternalRef: in.ExternalRef, ReturnURL: in.ReturnURL, State: in.State}
	if in.Scopes != nil {
		req.Scopes = *in.Scopes
		if req.Scopes == nil {
			req.Scopes = []string{}
		}
	}
	created, err := s.linkSessions.Create(c.Request().Context(), apiClientOf(c).ID, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, linkSessionResponse{ID: created.ID, URL: s.linkSessionURL(created.ID),
		ExpiresAt: created.ExpiresAt.UTC()})
}

// linkSessionURL is the owner's address for a session.
func (s *Server) linkSessionURL(id string) string {
	return strings.TrimRight(s.cfg.PublicURL.String(), "/") + "/link/" + id
}

// apiClaimLinkSession binds the session's link to the team's user, once.
func (s *Server) apiClaimLinkSession(c echo.Context) error {
	var in claimRequest
	if err := readJSONBody(c.Request(), &in, "code", "external_ref"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	claim, err := s.linkSessions.Claim(ctx, apiClientOf(c).ID, c.Param("id"), in.Code, in.ExternalRef)
	if err != nil {
		return err
	}
	lastUsed, err := s.store.LinkLastUsed(ctx, claim.Link.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPILink(claim.Link, lastUsed))
}

const maxJSONBody = 16 << 10

// readJSONBody decodes a JSON object into dst. Fields not in allowed are
// refused by name; so are values of the wrong type.
func readJSONBody(r *http.Request, dst any, allowed ...string) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return badRequest("The request body could not be read.")
	}
	if len(raw) > maxJSONBody {
		return apperr.New(apperr.TooLarge, errors.New("json body too large"))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return badRequest("The body must be a JSON object.")
	}
	var unknown []string
	for k := range fields {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badRequest("Unknown field(s): " + strings.Join(unknown, ", ") + ". Allowed: " + strings.Join(allowed, ", ") + ".")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest("The field " + te.Field + " has the wrong type.")
		}
		return badRequest("The body must be a JSON object.")
	}
	return nil
}
