package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/web/templates"
)

// maxActivityPage bounds ?page= (retention keeps far fewer pages).
const maxActivityPage = 10000

// accountPageParam reads the account page's only parameter, ?page=N.
func accountPageParam(c echo.Context) (int, error) {
	for name := range c.QueryParams() {
		if name != "page" {
			return 0, apperr.New(apperr.UnknownParameter, errors.New("unknown account parameter "+truncate(name, 40)))
		}
	}
	vs := c.QueryParams()["page"]
	if len(vs) == 0 {
		return 1, nil
	}
	v := vs[0]
	n, err := strconv.Atoi(v)
	if err != nil || len(vs) > 1 || n < 1 || n > maxActivityPage || strconv.Itoa(n) != v {
		return 0, apperr.New(apperr.NoSuchActivityPage, errors.New("bad activity page"))
	}
	return n, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// activityView turns one page of stored activity into the account page's list.
func activityView(evs []db.AuditEvent, page int, more bool) templates.Activity {
	out := templates.Activity{Page: page, Entries: make([]templates.ActivityEntry, 0, len(evs))}
	if page > 1 {
		out.NewerURL = "/account?page=" + strconv.Itoa(page-1) + "#activity-section"
		if page == 2 {
			out.NewerURL = "/account#activity-section"
		}
	}
	if more {
		out.OlderURL = "/account?page=" + strconv.Itoa(page+1) + "#activity-section"
	}
	for _, ev := range evs {
		e := templates.ActivityEntry{At: ev.At, Actor: ev.Actor, Client: ev.ClientName}
		switch ev.Action {
		case db.ActionLinked:
			e.Kind = "linked"
		case db.ActionRenewed:
			e.Kind = "renewed"
		case db.ActionReconnected:
			e.Kind = "reconnected"
		case db.ActionScopesChanged:
			e.Kind = "scopes_changed"
		case db.ActionRefreshed:
			e.Kind = "refreshed"
		case db.ActionUsed:
			e.Kind = "used"
		case db.ActionNeedsReauth:
			e.Kind = "needs_reauth"
			if reason, _ := ev.Detail["reason"].(string); reason == link.ReasonOtherAccount {
				e.Reason = "other_account"
			} else {
				e.Reason = "refresh_refused"
			}
		case db.ActionRevoked:
			e.Kind = "revoked"
		default:
			continue // a kind this version does not show
		}
		e.Scopes = templates.ScopesFor(detailStrings(ev.Detail, "granted_scopes"))
		e.Added = templates.ScopesFor(detailStrings(ev.Detail, "added"))
		e.Removed = templates.ScopesFor(detailStrings(ev.Detail, "removed"))
		if n, ok := ev.Detail["count"].(float64); ok {
			e.Count = int64(n)
		}
		switch {
		case ev.Actor == "owner" || ev.Actor == "tesla":
		case strings.HasPrefix(ev.Actor, "api:"):
			e.Actor = "api"
			if e.Client == "" {
				e.Client = strings.TrimPrefix(ev.Actor, "api:")
			}
		default:
			e.Actor = "system"
		}
		out.Entries = append(out.Entries, e)
	}
	return out
}

func detailStrings(d map[string]any, key string) []string {
	vs, _ := d[key].([]any)
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// downloadData answers "Download my data" with a JSON file of everything
// stored about the signed-in owner, without any token.
func (s *Server) downloadData(c echo.Context) error {
	o, err := s.requireOwner(c)
	if errors.Is(err, errNotSignedIn) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	if len(c.QueryParams()) > 0 {
		return apperr.Newf(apperr.UnknownParameter, "Download your data from your account page.",
			errors.New("parameters on the data download"))
	}
	exp, err := s.owners.Export(c.Request().Context(), o.ownerID)
	if errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+s.exportFileName(exp.ExportedAt.Format("2006-01-02"))+`"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	enc := json.NewEncoder(c.Response())
	enc.SetIndent("", "  ")
	return enc.Encode(exp)
}

// exportFileName is "<service>-data-<date>.json", with the service name
// reduced to characters safe in a header.
func (s *Server) exportFileName(date string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s.cfg.ServiceName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '_':
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "teslalink"
	}
	return name + "-data-" + date + ".json"
}

func (s *Server) deleteConfirm(c echo.Context) error {
	_, l, err := s.ownerLink(c)
	if errors.Is(err, errNotSignedIn) || errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.DeleteConfirm(templates.DeleteConfirmPage{
		Base: s.base(c, "Delete everything"), Email: l.OwnerEmail}))
}

// deleteAll erases the signed-in owner (GDPR Art. 17): tokens, links,
// sessions, activity and the owner row, then says what was deleted and
// points to Tesla's own page to remove the app there too.
func (s *Server) deleteAll(c echo.Context) error {
	o, err := s.requireOwner(c)
	if errors.Is(err, errNotSignedIn) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	if err := checkCSRF(c, o); err != nil {
		return err
	}
	erased, err := s.owners.Erase(c.Request().Context(), o.ownerID, "owner")
	if errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	// The session row is gone with the owner; this clears the cookie.
	if err := s.sessions.Destroy(c.Request(), c.Response(), o.sess); err != nil {
		return err
	}
	c.Set(ctxOwner, nil)
	back := strings.TrimRight(s.cfg.PublicURL.String(), "/") + "/"
	return s.render(c, http.StatusOK, templates.Deleted(templates.DeletedPage{Base: s.base(c, "Everything is deleted"),
		Links: len(erased.LinkIDs), Tokens: erased.Tokens, Sessions: erased.Sessions, Activity: erased.Activity,
		TeslaRevokeURL: s.tesla.RevokeConsentURL(back)}))
}

// erasedOwner is the answer to DELETE /api/v1/owners/{sub}.
type erasedOwner struct {
	OwnerSub string   `json:"owner_sub"`
	LinkIDs  []string `json:"link_ids"`
	Tokens   int      `json:"tokens"`
	Sessions int      `json:"sessions"`
	Activity int      `json:"activity"`
}

// apiEraseOwner erases an owner for a deletion request the team received
// itself: the same as the owner's "Delete everything".
func (s *Server) apiEraseOwner(c echo.Context) error {
	if len(c.QueryParams()) > 0 {
		return badRequest("This operation takes no query parameters.")
	}
	sub, err := url.PathUnescape(c.Param("sub"))
	if err != nil || sub == "" || len(sub) > 255 || !utf8.ValidString(sub) || strings.ContainsFunc(sub, unicode.IsControl) {
		return badRequest("sub must be an owner's Tesla account id (owner_sub of a link).")
	}
	client := apiClientOf(c)
	ctx := c.Request().Context()
	erased, err := s.owners.EraseBySub(ctx, sub, "api:"+client.Name)
	if errors.Is(err, db.ErrNotFound) {
		return apperr.Newf(apperr.NotFound, "No owner with this Tesla account id is stored (any more).", err)
	}
	if err != nil {
		return err
	}
	ids := erased.LinkIDs
	if ids == nil {
		ids = []string{}
	}
	return c.JSON(http.StatusOK, erasedOwner{OwnerSub: erased.OwnerSub, LinkIDs: ids, Tokens: erased.Tokens,
		Sessions: erased.Sessions, Activity: erased.Activity})
}
