package handlers

import (
	"crypto/subtle"
	"errors"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/session"
)

const ctxOwner = "owner"

// ownerCtx is the signed-in owner of a request.
type ownerCtx struct {
	ownerID int64
	csrf    string
	sess    *sessions.Session
}

// requireOwner returns the request's signed-in owner, or errNotSignedIn.
// The session is loaded once per request.
func (s *Server) requireOwner(c echo.Context) (*ownerCtx, error) {
	if o, ok := c.Get(ctxOwner).(*ownerCtx); ok && o != nil {
		return o, nil
	}
	sess, err := s.sessions.Get(c.Request(), s.sessions.CookieName())
	if err != nil {
		return nil, err
	}
	id, _ := sess.Values[session.KeyOwnerID].(int64)
	csrf, _ := sess.Values[session.KeyCSRF].(string)
	if sess.IsNew || id == 0 || csrf == "" {
		return nil, errNotSignedIn
	}
	o := &ownerCtx{ownerID: id, csrf: csrf, sess: sess}
	c.Set(ctxOwner, o)
	return o, nil
}

// optionalOwner is requireOwner for pages anyone may see: nil when nobody is signed in.
func (s *Server) optionalOwner(c echo.Context) (*ownerCtx, error) {
	o, err := s.requireOwner(c)
	if errors.Is(err, errNotSignedIn) {
		return nil, nil //nolint:nilnil // "nobody" is an answer here, not a failure
	}
	return o, err
}

var errNotSignedIn = errors.New("not signed in")

// checkCSRF compares the form's token with the session's, in constant time.
func checkCSRF(c echo.Context, o *ownerCtx) error {
	if subtle.ConstantTimeCompare([]byte(c.FormValue("csrf")), []byte(o.csrf)) != 1 {
		return apperr.New(apperr.CSRF, errors.New("csrf token mismatch"))
	}
	return nil
}

// ownerLink is the signed-in owner's link, or a redirect home.
func (s *Server) ownerLink(c echo.Context) (*ownerCtx, *db.Link, error) {
	o, err := s.requireOwner(c)
	if err != nil {
		return nil, nil, err
	}
	l, err := s.store.GetLinkByOwner(c.Request().Context(), o.ownerID)
	if err != nil {
		return nil, nil, err
	}
	return o, l, nil
}
