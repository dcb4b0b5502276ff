package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/link"
	"teslalink/internal/session"
)

// connectStart begins a login: the link service makes the login state
// (state, nonce, PKCE verifier), kept in the login cookie, and the browser
// goes to the provider's authorize endpoint.
func (s *Server) connectStart(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return apperr.New(apperr.LoginFormUnreadable, err)
	}
	form := c.Request().PostForm
	authURL, st, err := s.links.BeginLogin(c.Request().Context(), link.BeginRequest{Scopes: form["scope"],
		ReturnTo: form.Get("return_to"), Locale: s.cfg.Locale})
	if err != nil {
		return err
	}
	if err := s.login.set(c.Response(), st); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, authURL)
}

// callback completes the login with one call to the link service
// (docs/architecture.md, "The OAuth callback"). Every
// failure renders a friendly page with a reference; nothing of the code or
// tokens is shown.
func (s *Server) callback(c echo.Context) error {
	req := c.Request()
	st := s.login.take(c.Response(), req) // nil when missing or unreadable: the service says "expired"
	done, err := s.links.FinishLogin(req.Context(), st, req.URL.Query())
	if st != nil && st.LinkSessionID != "" && s.linkSessions != nil {
		return s.finishLinkSession(c, st.LinkSessionID, done, err)
	}
	if err != nil {
		return err
	}
	if err := s.startSession(c, done.Link.OwnerID); err != nil {
		return err
	}
	target := "/account"
	if done.ReturnTo != "" {
		target = done.ReturnTo
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// startSession issues a brand-new session for the owner (fixation defence).
func (s *Server) startSession(c echo.Context, ownerID int64) error {
	sess, err := s.sessions.Get(c.Request(), s.sessions.CookieName())
	if err != nil {
		return err
	}
	if err := s.sessions.Renew(c.Request().Context(), sess); err != nil {
		return err
	}
	sess.Values = map[any]any{session.KeyOwnerID: ownerID, session.KeyCSRF: randomToken(32)}
	return sess.Save(c.Request(), c.Response())
}
