package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/i18n"
	"teslalink/internal/link"
)

// langCookie names the cookie that keeps the owner's language choice.
func (s *Server) langCookie() string {
	if s.cfg.SecureCookies {
		return "__Host-teslalink-lang"
	}
	return "teslalink-lang"
}

// language is the request's language: the switcher's cookie, else the
// best match for Accept-Language, else English.
func (s *Server) language(c echo.Context) *i18n.Lang {
	if l, ok := c.Get(ctxLang).(*i18n.Lang); ok {
		return l
	}
	choice := ""
	if ck, err := c.Cookie(s.langCookie()); err == nil {
		choice = ck.Value
	}
	l := i18n.Choose(choice, c.Request().Header.Get("Accept-Language"))
	c.Set(ctxLang, l)
	return l
}

const ctxLang = "lang"

// setLanguage is the language switcher: it keeps the choice in a cookie for
// a year and sends the owner back to the page they were on.
func (s *Server) setLanguage(c echo.Context) error {
	l, ok := i18n.ByCode(c.FormValue("lang"))
	if !ok {
		return apperr.New(apperr.UnknownParameter, errors.New("unknown language"))
	}
	c.SetCookie(&http.Cookie{Name: s.langCookie(), Value: l.Code, Path: "/", MaxAge: int((365 * 24 * time.Hour).Seconds()),
		Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	back := link.SafeReturnTo(c.FormValue("return"))
	if back == "" {
		back = "/"
	}
	return c.Redirect(http.StatusSeeOther, back)
}
