// Package handlers is teslalink's HTTP surface: owner pages, the token
// broker API, and the middleware around them. Handlers parse and validate
// input, make one call into a service or the store, and render or redirect.
package handlers

import (
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/internal/oidc"
	"teslalink/internal/owner"
	"teslalink/internal/ratelimit"
	"teslalink/internal/session"
	"teslalink/internal/usage"
)

// Config is what the handlers need from the operator's configuration.
type Config struct {
	ServiceName string
	PublicURL   *url.URL // external base URL; the callback is PublicURL + /auth/tesla/callback
	// SecureCookies is false only for plain-HTTP localhost in `web dev`: the
	// cookies then drop the Secure flag and the __Host- prefix.
	SecureCookies bool
	OfferedScopes []string // optional scopes shown on /connect
	DefaultScopes []string // pre-checked on /connect
	SessionKeys   [][]byte // SESSION_KEYS, decoded; first signs
	PublicKeyPEM  []byte   // served at /.well-known/appspecific/com.tesla.3p.public-key.pem; nil → 404
	Locale        string   // sent to Tesla's authorize page, default "en-US"
	// CanonicalHost redirects page requests that arrive under another host
	// name (localhost vs 127.0.0.1) to PublicURL, where the cookies and the
	// registered redirect URI live. For `web dev`.
	CanonicalHost  bool
	TrustedProxies bool // read X-Forwarded-For for the client IP
	// ConnectPerMinute limits the requests of one client address to /connect
	// and the callback (bursts of as many); 0: no limit.
	ConnectPerMinute int
	// APIPerSecond limits the requests of one API client to /api/v1 (bursts
	// of as many); 0: no limit.
	APIPerSecond int
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg      Config
	store    *db.Store
	tesla    *oidc.Client
	links    *link.Service
	owners   *owner.Service
	sessions *session.Store
	// linkSessions runs the team's link sessions; nil answers their routes with 404.
	linkSessions *linksession.Service
	usage        *usage.Recorder
	log          *slog.Logger
	now          func() time.Time
	login        *loginCookies
	cssPath      string
	icoPath      string
	echo         *echo.Echo

	authOrigin atomic.Pointer[string] // cached teslaOrigin
	draining   atomic.Bool            // set by Drain: /readyz answers 503
	metrics    TokenMetrics           // nil: not counted

	connectLimit *ratelimit.Keyed // per client address; nil: no limit
	apiLimit     *ratelimit.Keyed // per API client; nil: no limit
}

// Deps are the services the Server calls.
type Deps struct {
	Store    *db.Store
	Tesla    *oidc.Client
	Links    *link.Service
	Owners   *owner.Service
	Sessions *session.Store
	Usage    *usage.Recorder
	// LinkSessions is optional: without it link sessions are refused.
	LinkSessions *linksession.Service
	Logger       *slog.Logger
	Now          func() time.Time
	// Metrics counts token requests; optional.
	Metrics TokenMetrics
}

// TokenMetrics counts token requests by API client name ("" when the key
// was not accepted) and outcome ("ok" or the problem type).
type TokenMetrics interface {
	TokenRequest(client, outcome string)
}

// New builds the Server with every route and middleware.
func New(cfg Config, deps Deps) *Server {
	if cfg.ServiceName == "" {
		cfg.ServiceName = "teslalink"
	}
	if cfg.Locale == "" {
		cfg.Locale = "en-US"
	}
	s := &Server{cfg: cfg, store: deps.Store, tesla: deps.Tesla, links: deps.Links, owners: deps.Owners, sessions: deps.Sessions,
		usage: deps.Usage, linkSessions: deps.LinkSessions, log: deps.Logger, now: deps.Now, metrics: deps.Metrics}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.connectLimit = ratelimit.NewKeyed(float64(cfg.ConnectPerMinute)/60, cfg.ConnectPerMinute, s.now)
	s.apiLimit = ratelimit.NewKeyed(float64(cfg.APIPerSecond), cfg.APIPerSecond, s.now)
	s.login = newLoginCookies(cfg.SessionKeys, cfg.SecureCookies)
	s.cssPath, s.icoPath = staticPaths()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	if cfg.TrustedProxies {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	s.routes(e)
	s.echo = e
	return s
}

// Handler is the HTTP handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }
