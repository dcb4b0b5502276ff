package handlers

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/link"
	"teslalink/internal/oidc"
	"teslalink/internal/session"
)

// alwaysScopes are requested on every login.
var alwaysScopes = []string{"openid", "offline_access"}

// connectStart begins a login: fresh state, nonce and PKCE verifier in the
// login cookie, then 303 to the provider's authorize endpoint.
func (s *Server) connectStart(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return pageError(http.StatusBadRequest, "That form could not be read", "Please go back and choose your permissions again.", "/connect", err)
	}
	form := c.Request().PostForm
	scopes := slices.Clone(alwaysScopes)
	for _, sc := range form["scope"] {
		if !slices.Contains(s.cfg.OfferedScopes, sc) {
			return pageError(http.StatusBadRequest, "Unknown permission", "One of the chosen permissions is not offered by this service. Please choose again.", "/connect", nil)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	tx := &loginTx{State: randomToken(32), Nonce: randomToken(32), Verifier: randomToken(48), Scopes: scopes,
		ReturnTo: safeReturnTo(form.Get("return_to")), Created: s.now()}
	authURL, err := s.tesla.AuthCodeURL(c.Request().Context(), oidc.AuthRequest{State: tx.State, Nonce: tx.Nonce,
		Verifier: tx.Verifier, Scopes: scopes, Locale: s.cfg.Locale, PromptMissingScopes: true})
	if err != nil {
		return teslaDownPage(err)
	}
	if err := s.login.set(c.Response(), tx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, authURL)
}

// safeReturnTo keeps only a relative path on this site (see docs/security.md,
// "Login transaction").
func safeReturnTo(v string) string {
	if v == "" || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return v
}

func teslaDownPage(err error) error {
	return &appError{Status: http.StatusServiceUnavailable, Type: "tesla-unavailable", Title: "Tesla can't be reached right now",
		Detail:   "We could not reach Tesla's sign-in service. Nothing was changed. Please try again in a few minutes.",
		RetryURL: "/connect", Err: err}
}

// callback completes the login (docs/architecture.md,
// "The OAuth callback"). Every failure renders a
// friendly page with a reference; nothing of the code or tokens is shown.
func (s *Server) callback(c echo.Context) error {
	req := c.Request()
	q := req.URL.Query()
	tx, ok := s.login.take(c.Response(), req, s.now())
	if !ok {
		return pageError(http.StatusBadRequest, "This sign-in link has expired",
			"The sign-in was started in another browser, took longer than 10 minutes, or was already used. Nothing was changed. Please start again.",
			"/connect", errors.New("missing or invalid login cookie"))
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(tx.State)) != 1 {
		return pageError(http.StatusBadRequest, "This sign-in link is not valid",
			"The answer from Tesla did not match the sign-in you started here. Nothing was changed. Please start again.",
			"/connect", errors.New("state mismatch"))
	}
	fresh, err := s.store.ConsumeLoginState(req.Context(), hashState(tx.State), tx.Created.Add(loginTTL+time.Minute))
	if err != nil {
		return err
	}
	if !fresh {
		return pageError(http.StatusBadRequest, "This sign-in link was already used",
			"Each sign-in link works once. Nothing was changed. Please start again.", "/connect", errors.New("state replayed"))
	}
	if err := s.tesla.CheckCallbackIssuer(q); oidc.KindOf(err) == oidc.KindTransient {
		return teslaDownPage(err) // discovery not done yet: we cannot check the issuer
	} else if err != nil {
		return pageError(http.StatusBadRequest, "This sign-in answer came from the wrong place",
			"The answer did not come from the Tesla sign-in service we sent you to, so we ignored it. Nothing was changed. Please start again.",
			"/connect", err)
	}
	if e := q.Get("error"); e != "" {
		return callbackErrorPage(e)
	}
	code := q.Get("code")
	if code == "" {
		return pageError(http.StatusBadRequest, "Tesla did not complete the sign-in",
			"Tesla's answer had no authorisation in it. Nothing was changed. Please start again.", "/connect", errors.New("no code"))
	}
	l, err := s.links.CompleteLogin(req.Context(), link.Login{Code: code, Verifier: tx.Verifier, Nonce: tx.Nonce, RequestedScopes: tx.Scopes})
	if err != nil {
		return loginFailedPage(err)
	}
	s.forget(l.ID) // new tokens and scopes: nothing cached about the old grant stays
	if err := s.startSession(c, l.OwnerID); err != nil {
		return err
	}
	target := "/account"
	if tx.ReturnTo != "" {
		target = tx.ReturnTo
	}
	return c.Redirect(http.StatusSeeOther, target)
}

func callbackErrorPage(code string) error {
	err := errors.New("provider returned error=" + sanitize(code))
	switch code {
	case "access_denied":
		return pageError(http.StatusOK, "You did not allow access",
			"You chose not to share your Tesla account, so nothing was linked. You can connect whenever you like.", "/connect", err)
	case "invalid_scope":
		return pageError(http.StatusBadRequest, "The sign-in service refused some permissions",
			"The sign-in service does not offer one of the permissions asked for. Nothing was linked. Try again with fewer permissions.", "/connect", err)
	case "login_required", "interaction_required", "consent_required":
		return pageError(http.StatusBadRequest, "Tesla needs you to sign in",
			"Tesla asked you to sign in again. Nothing was linked. Please start again.", "/connect", err)
	case "temporarily_unavailable", "server_error":
		return pageError(http.StatusServiceUnavailable, "Tesla can't complete sign-in right now",
			"Tesla's sign-in service had a problem. Nothing was linked. Please try again in a few minutes.", "/connect", err)
	}
	return pageError(http.StatusBadRequest, "Tesla did not complete the sign-in",
		"Tesla reported a problem with the sign-in. Nothing was linked. Please start again.", "/connect", err)
}

func loginFailedPage(err error) error {
	var le *link.LoginError
	kind := oidc.KindOf(err)
	if errors.As(err, &le) {
		kind = le.Kind
		if le.Step == "store" {
			return err // database trouble: the generic handler answers 503 or 500
		}
	}
	switch kind {
	case oidc.KindTransient:
		return pageError(http.StatusServiceUnavailable, "Tesla isn't answering right now",
			"We could not finish linking because Tesla did not answer. Nothing was linked. Please try again in a few minutes.", "/connect", err)
	case oidc.KindConfig:
		return pageError(http.StatusBadGateway, "This service is not set up correctly",
			"Tesla rejected this service's registration. The operator has been alerted. Nothing was linked.", "/", err)
	case oidc.KindReauth:
		return pageError(http.StatusBadRequest, "This sign-in has expired",
			"Tesla says the sign-in code has expired or was already used. Nothing was linked. Please start again.", "/connect", err)
	}
	return pageError(http.StatusBadRequest, "We could not verify Tesla's answer",
		"The answer from Tesla did not pass our security checks, so nothing was linked. Please start again; if it keeps happening, contact support with the reference below.",
		"/connect", err)
}

// sanitize keeps an error code safe for logs (no injection of log lines).
func sanitize(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '?'
	}, v)
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
