package handlers

import (
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// newReference returns a short id for a request, shown to owners on error
// pages and written to the log, so support can find the one line.
func newReference() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

const ctxLogAttrs = "log_attrs"

// requestID gives every request a reference generated here; a client must not
// choose the id that support sees on a page or searches the log for. Behind a
// trusted proxy, the proxy's own X-Request-Id is kept as a separate log field
// (upstream_request_id), and only when it is short and well-formed.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXRequestID, newReference())
		if s.cfg.TrustedProxies {
			if in := c.Request().Header.Get(echo.HeaderXRequestID); wellFormedRequestID(in) {
				logAttrs(c, slog.String("upstream_request_id", in))
			}
		}
		return next(c)
	}
}

// maxUpstreamRequestID is the longest incoming X-Request-Id recorded (a UUID
// has 36 characters).
const maxUpstreamRequestID = 64

// wellFormedRequestID accepts 1-64 characters of letters, digits and ._:-
func wellFormedRequestID(v string) bool {
	if v == "" || len(v) > maxUpstreamRequestID {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			return false
		}
	}
	return true
}

// logAttrs adds attributes to the request's access log line.
func logAttrs(c echo.Context, attrs ...slog.Attr) {
	prev, _ := c.Get(ctxLogAttrs).([]slog.Attr)
	c.Set(ctxLogAttrs, append(prev, attrs...))
}

func reference(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

// accessLog writes one structured line per request. It logs the path only,
// never the query string: the callback's query holds the code and state.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("method", req.Method), slog.String("path", logPath(c)), slog.Int("status", res.Status),
			slog.Duration("duration", time.Since(start)), slog.Int64("bytes", res.Size),
			slog.String("ip", c.RealIP()), slog.String("ref", reference(c))}
		if extra, ok := c.Get(ctxLogAttrs).([]slog.Attr); ok {
			attrs = append(attrs, extra...)
		}
		s.log.LogAttrs(req.Context(), level, "request", attrs...)
		return nil
	}
}

// logPath is the request's path for the log; a link session's id (a
// bearer secret until used) is replaced by the route's ":id".
func logPath(c echo.Context) string {
	if p := c.Path(); p == "/link/:id" || strings.HasPrefix(p, "/api/v1/link-sessions/:id") {
		return p
	}
	return c.Request().URL.Path
}

var (
	hdrNoSniff    = []string{"nosniff"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrHSTS       = []string{"max-age=63072000; includeSubDomains"}
	hdrAPICSP     = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrNoStore    = []string{"no-store"}
)

// securityHeaders sets the headers every response carries (see docs/security.md,
// "Login transaction" and "CSRF and headers").
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		// Constant values share one read-only slice (set directly: the
		// names are canonical), so the token path allocates none of them.
		h["X-Content-Type-Options"] = hdrNoSniff
		h["Referrer-Policy"] = hdrNoReferrer
		if s.cfg.PublicURL.Scheme == "https" {
			h["Strict-Transport-Security"] = hdrHSTS
		}
		path := c.Request().URL.Path
		if strings.HasPrefix(path, "/api/") {
			// JSON for machines: nothing to frame or run, and kept short on the hot path.
			h["Content-Security-Policy"] = hdrAPICSP
			h["Cache-Control"] = hdrNoStore
			return next(c)
		}
		h.Set("Content-Security-Policy", s.pageCSP(""))
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !strings.HasPrefix(path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// pageCSP is the pages' Content-Security-Policy. A form may post to this
// site and be redirected to Tesla (POST /connect), plus extraOrigin when
// one page's form may be redirected elsewhere (a link session's return URL).
func (s *Server) pageCSP(extraOrigin string) string {
	formAction := "'self'"
	if origin := s.teslaOrigin(); origin != "" {
		// POST /connect answers with a redirect to Tesla; browsers check form-action on it.
		formAction += " " + origin
	}
	if extraOrigin != "" {
		formAction += " " + extraOrigin
	}
	return "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// teslaOrigin is the scheme://host of the provider's authorize endpoint, once discovered.
func (s *Server) teslaOrigin() string {
	if o := s.authOrigin.Load(); o != nil {
		return *o
	}
	if s.tesla == nil || !s.tesla.Ready() {
		return ""
	}
	u, err := url.Parse(s.tesla.AuthorizationEndpoint())
	if err != nil || u.Host == "" {
		return ""
	}
	o := u.Scheme + "://" + u.Host
	s.authOrigin.Store(&o) // discovery results never change once there
	return o
}

// sameOriginPosts refuses state-changing browser requests that come from
// another site (see docs/security.md, "CSRF and headers"), using Fetch Metadata and then Origin.
// The API is exempt: it authenticates with bearer keys, not cookies.
func (s *Server) sameOriginPosts(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions ||
			strings.HasPrefix(req.URL.Path, "/api/") {
			return next(c)
		}
		// Fetch Metadata, when the browser sends it, decides alone: under our
		// Referrer-Policy: no-referrer browsers send "Origin: null" even for
		// same-origin form posts, so Origin is only the fallback.
		if site := req.Header.Get("Sec-Fetch-Site"); site != "" {
			if site != "same-origin" && site != "none" {
				return errForbiddenCrossSite
			}
			return next(c)
		}
		if origin := req.Header.Get("Origin"); origin != "" && !s.sameOrigin(origin, req) {
			return errForbiddenCrossSite
		}
		return next(c)
	}
}

func (s *Server) sameOrigin(origin string, req *http.Request) bool {
	pub := s.cfg.PublicURL
	if strings.EqualFold(origin, pub.Scheme+"://"+pub.Host) {
		return true
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(origin, scheme+"://"+req.Host)
}

// canonicalHost sends browsers that opened the site under another host name
// to PublicURL: cookies are per host, and Tesla returns to the registered
// redirect URI, so a login started on "localhost" could not finish on
// "127.0.0.1". Only page GETs are redirected.
func (s *Server) canonicalHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		path := req.URL.Path
		if (req.Method == http.MethodGet || req.Method == http.MethodHead) && !strings.EqualFold(req.Host, s.cfg.PublicURL.Host) &&
			!strings.HasPrefix(path, "/api/") && path != "/healthz" && path != "/readyz" {
			return c.Redirect(http.StatusTemporaryRedirect, strings.TrimRight(s.cfg.PublicURL.String(), "/")+req.URL.RequestURI())
		}
		return next(c)
	}
}
