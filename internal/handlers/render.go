package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"teslalink/internal/i18n"
	"teslalink/web/templates"
)

// render writes a templ page in the request's language.
func (s *Server) render(c echo.Context, status int, page templ.Component) error {
	lang := s.language(c)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	h.Set("Content-Language", lang.Tag.String())
	h.Add(echo.HeaderVary, "Accept-Language")
	c.Response().WriteHeader(status)
	return page.Render(i18n.With(c.Request().Context(), lang), c.Response())
}

// base fills what every page needs.
func (s *Server) base(c echo.Context, title string) templates.Base {
	b := templates.Base{ServiceName: s.cfg.ServiceName, Title: title, CSSPath: s.cssPath, FaviconPath: s.icoPath,
		TeslaReachable: s.tesla == nil || s.tesla.Ready()}
	if c.Request().Method == http.MethodGet {
		b.Path = switcherReturn(c.Request().URL) // where the language switcher returns to
	}
	if o, ok := c.Get(ctxOwner).(*ownerCtx); ok && o != nil {
		b.SignedIn = true
		b.CSRFToken = o.csrf
	}
	return b
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc.Encode(v)
}

// switcherReturn is the page the language switcher brings the owner back
// to: its path, with only the parameters the owner pages themselves take.
// Anything else in the query (the callback's code and state, or whatever
// someone appended) never reaches the HTML.
func switcherReturn(u *url.URL) string {
	q := u.Query()
	switch {
	case strings.HasPrefix(u.Path, "/auth/"):
		return "/"
	case u.Path == "/connect" && q.Get("relink") != "":
		return "/connect?relink=1"
	case u.Path == "/account" && len(q["page"]) == 1:
		if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n <= maxActivityPage {
			return "/account?page=" + strconv.Itoa(n)
		}
	}
	return u.Path
}
