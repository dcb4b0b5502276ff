package handlers

import (
	"encoding/json"
	"io"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"teslalink/web/templates"
)

// render writes a templ page.
func (s *Server) render(c echo.Context, status int, page templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return page.Render(c.Request().Context(), c.Response())
}

// base fills what every page needs.
func (s *Server) base(c echo.Context, title string) templates.Base {
	b := templates.Base{ServiceName: s.cfg.ServiceName, Title: title, CSSPath: s.cssPath, FaviconPath: s.icoPath,
		TeslaReachable: s.tesla == nil || s.tesla.Ready()}
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
