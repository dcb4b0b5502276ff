package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/web/templates"
)

// linkSessionPage is GET /link/{id}, where a team's app sends an owner:
// who asks and for what. Looking is free: only the form's POST spends the
// URL, so a link preview cannot use it up. An unknown, expired or used URL
// shows a friendly page and never leads to Tesla.
func (s *Server) linkSessionPage(c echo.Context) error {
	ctx := c.Request().Context()
	ls, err := s.linkSessions.Open(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	existing, err := s.existingLink(c, ls)
	if err != nil {
		return err
	}
	page := templates.LinkSessionPage{Base: s.base(c, "Connect your Tesla"), Action: "/link/" + c.Param("id"),
		ClientName: ls.APIClientDisplay}
	var granted []string
	if existing != nil {
		granted = existing.GrantedScopes
		page.Upgrade = true
	}
	for _, sc := range templates.ScopesFor(ls.Scopes) {
		if sc.Fixed {
			continue
		}
		sc.Checked = true
		sc.New = existing != nil && !slices.Contains(granted, sc.Name)
		page.Scopes = append(page.Scopes, sc)
	}
	for _, sc := range templates.ScopesFor(granted) {
		if !sc.Fixed && !slices.Contains(ls.Scopes, sc.Name) && slices.Contains(s.cfg.OfferedScopes, sc.Name) {
			page.Kept = append(page.Kept, sc)
		}
	}
	_, page.Always = templates.ConnectScopes(nil, nil)
	// "No thanks" answers with a redirect to the app's return URL.
	c.Response().Header().Set("Content-Security-Policy", s.pageCSP(originOf(ls.ReturnURL)))
	return s.render(c, http.StatusOK, templates.LinkSession(page))
}

// existingLink is the owner's current connection, as far as we can tell
// before Tesla says who they are.
func (s *Server) existingLink(c echo.Context, ls *db.LinkSession) (*db.Link, error) {
	o, err := s.optionalOwner(c)
	if err != nil {
		return nil, err
	}
	var signedIn *db.Link
	if o != nil {
		signedIn, err = s.store.GetLinkByOwner(c.Request().Context(), o.ownerID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
	}
	return s.linkSessions.ExistingLink(c.Request().Context(), ls, signedIn)
}

// linkSessionStart is the POST of the session page: it spends the session
// URL and sends the owner to Tesla, or straight back to the app when they
// declined.
func (s *Server) linkSessionStart(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	id := c.Param("id")
	if err := req.ParseForm(); err != nil {
		return apperr.New(apperr.LoginFormUnreadable, err)
	}
	ls, err := s.linkSessions.Open(ctx, id)
	if err != nil {
		return err
	}
	if req.PostForm.Get("decision") == "deny" {
		if _, err := s.linkSessions.Start(ctx, id); err != nil {
			return err
		}
		back, err := s.linkSessions.Finish(ctx, id, linksession.Outcome{Status: db.SessionDenied})
		if err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, back)
	}
	existing, err := s.existingLink(c, ls)
	if err != nil {
		return err
	}
	var granted []string
	if existing != nil {
		granted = existing.GrantedScopes
	}
	scopes, err := s.linkSessions.Scopes(ls, req.PostForm["scope"], granted)
	if err != nil {
		return apperr.New(apperr.UnknownPermission, err)
	}
	authURL, st, err := s.links.BeginLogin(ctx, link.BeginRequest{Scopes: scopes, LinkSessionID: id, Locale: s.cfg.Locale})
	if err != nil {
		return err
	}
	if _, err := s.linkSessions.Start(ctx, id); err != nil {
		return err // used meanwhile (another tab) or expired: no Tesla
	}
	if err := s.login.set(c.Response(), st); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, authURL)
}

// finishLinkSession ends the callback of a login begun by a link session:
// the owner goes back to the app's return URL with the outcome. Failures
// before the login state was accepted (expired, replayed, forged) show our
// page instead: they do not belong to the session.
func (s *Server) finishLinkSession(c echo.Context, id string, done *link.Finished, loginErr error) error {
	ctx := c.Request().Context()
	out := linksession.Outcome{Status: db.SessionLinked}
	if loginErr != nil {
		out.Status = sessionStatusOf(loginErr)
		if out.Status == "" {
			return loginErr
		}
		s.log.InfoContext(ctx, "link session login failed", "status", out.Status, "error", loginErr)
	} else {
		out.LinkID = done.Link.ID
		if err := s.startSession(c, done.Link.OwnerID); err != nil {
			return err
		}
	}
	back, err := s.linkSessions.Finish(context.WithoutCancel(ctx), id, out)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// sessionStatusOf is the return URL's status for a failed login, or "" when
// the failure came before the login state was accepted.
func sessionStatusOf(err error) string {
	switch apperr.CodeOf(err) {
	case apperr.LoginDenied:
		return db.SessionDenied
	case apperr.LoginInvalidScope, apperr.LoginSignInRequired, apperr.LoginProviderDown, apperr.LoginProviderError,
		apperr.LoginNoCode, apperr.LoginTeslaDown, apperr.LoginMisconfigured, apperr.LoginCodeExpired, apperr.LoginUnverified:
		return db.SessionError
	}
	return ""
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
