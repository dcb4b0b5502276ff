// Package app wires teslalink once: from a store, a Tesla client and the
// operator's settings it builds the link service, the owner sessions, the
// usage recorder, the token cache and the HTTP handlers, and it owns the
// background loops. `web serve`, `web dev` and the tests all use it, so the
// tests exercise the production wiring.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/handlers"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/internal/metrics"
	"teslalink/internal/oidc"
	"teslalink/internal/owner"
	"teslalink/internal/seal"
	"teslalink/internal/session"
	"teslalink/internal/tokencache"
	"teslalink/internal/usage"
)

// Config is everything the app needs besides its store and Tesla client.
type Config struct {
	ServiceName string
	PublicURL   *url.URL
	// InsecureCookies drops the Secure flag and the __Host- prefix from the
	// cookies: only for plain-HTTP localhost.
	InsecureCookies bool
	OfferedScopes   []string
	DefaultScopes   []string
	SessionKeys     [][]byte
	TokenKeys       *seal.Keyring
	PublicKeyPEM    []byte
	TrustedProxies  bool
	// ConnectPerMinute and APIPerSecond are the rate limits per client
	// address on /connect and the callback, and per API client on /api/v1;
	// 0 turns a limit off.
	ConnectPerMinute int
	APIPerSecond     int
	CanonicalHost    bool

	RefreshMargin time.Duration // 0: the link service's default
	SessionIdle   time.Duration // 0: the session store's default
	SessionMaxAge time.Duration // 0: the session store's default
	// SessionNow is the session store's clock; nil: time.Now.
	SessionNow func() time.Time
	// Now is the clock of the link service and the handlers; nil: time.Now.
	Now func() time.Time

	// TokenCacheBytes sizes the token cache; 0 turns it off.
	TokenCacheBytes int
	// UsageFlush is how often token-use attribution is written; 0: 10 seconds.
	UsageFlush time.Duration
	// KeepAliveInterval is how often links with an old refresh token are
	// refreshed in the background; 0 turns the keep-alive loop off.
	KeepAliveInterval time.Duration
	KeepAliveAge      time.Duration // refresh tokens older than this are renewed
	// ReturnURLs is where link sessions may send owners back
	// (LINK_RETURN_URLS); nil or empty refuses every link session.
	ReturnURLs *linksession.Allowlist
	// LinkSessionTTL is how long a link session URL works; 0: 30 minutes.
	LinkSessionTTL time.Duration

	// CleanupInterval is how often expired sessions and login states are
	// deleted; 0 turns the cleanup loop off.
	CleanupInterval time.Duration
	// ActivityRetention is how long owners' activity is kept (deleted hourly
	// when CleanupInterval is set); zero: 13 months.
	ActivityRetention owner.Retention
	// LinkCountInterval is how often the links-by-status gauge is counted;
	// 0 turns the count off (no metrics listener).
	LinkCountInterval time.Duration

	Logger *slog.Logger
}

// App is the wired service.
type App struct {
	Store    *db.Store
	Tesla    *oidc.Client
	Links    *link.Service
	Owners   *owner.Service
	Sessions *session.Store
	Usage    *usage.Recorder
	Cache    *tokencache.Cache // nil when TokenCacheBytes is 0
	// LinkSessions runs the team's link sessions.
	LinkSessions *linksession.Service
	Server       *handlers.Server
	// Metrics is this instance's Prometheus registry (served on
	// METRICS_ADDR by cmd/web, never on the public port).
	Metrics *metrics.Metrics

	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// ConfigError names the setting New could not use.
type ConfigError struct {
	Setting string // e.g. "SESSION_KEYS"
	Err     error
}

func (e *ConfigError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// New wires the app. Nothing runs until Start.
func New(cfg Config, store *db.Store, tesla *oidc.Client) (*App, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &App{Store: store, Tesla: tesla, cfg: cfg, log: logger}
	if cfg.TokenCacheBytes > 0 {
		a.Cache = tokencache.New(time.Minute, cfg.TokenCacheBytes, logger.With("component", "tokencache"))
	}
	var cacheStats metrics.CacheStats
	if a.Cache != nil {
		cacheStats = a.Cache
	}
	a.Metrics = metrics.New(store, cacheStats, logger.With("component", "metrics"))
	a.Metrics.WatchTokenBudget(tesla.TokenBudget())
	a.Links = link.New(link.Config{Store: store, Tesla: tesla, Keys: cfg.TokenKeys, Logger: logger.With("component", "link"),
		Now: cfg.Now, RefreshMargin: cfg.RefreshMargin, OfferedScopes: cfg.OfferedScopes, OnRefresh: a.Metrics.Refresh})
	cookieName := "__Host-teslalink"
	if cfg.InsecureCookies {
		cookieName = "teslalink"
	}
	sessions, err := session.New(store, cfg.SessionKeys, session.Options{CookieName: cookieName, Secure: !cfg.InsecureCookies,
		Now: cfg.SessionNow, IdleTimeout: cfg.SessionIdle, MaxAge: cfg.SessionMaxAge})
	if err != nil {
		return nil, &ConfigError{Setting: "SESSION_KEYS", Err: err}
	}
	a.Sessions = sessions
	flush := cfg.UsageFlush
	if flush <= 0 {
		flush = 10 * time.Second
	}
	a.Usage = usage.New(store, flush, logger.With("component", "usage"))
	a.LinkSessions = linksession.New(linksession.Config{Store: store, Allowlist: cfg.ReturnURLs, TTL: cfg.LinkSessionTTL,
		OfferedScopes: cfg.OfferedScopes, DefaultScopes: cfg.DefaultScopes, Now: cfg.Now,
		Logger: logger.With("component", "linksession")})
	a.Owners = owner.New(owner.Config{Store: store, Retention: cfg.ActivityRetention, Logger: logger.With("component", "owner"),
		Now: cfg.Now})
	a.Server = handlers.New(handlers.Config{
		ServiceName: cfg.ServiceName, PublicURL: cfg.PublicURL, SecureCookies: !cfg.InsecureCookies,
		OfferedScopes: cfg.OfferedScopes, DefaultScopes: cfg.DefaultScopes, SessionKeys: cfg.SessionKeys,
		PublicKeyPEM: cfg.PublicKeyPEM, TrustedProxies: cfg.TrustedProxies, CanonicalHost: cfg.CanonicalHost,
		ConnectPerMinute: cfg.ConnectPerMinute, APIPerSecond: cfg.APIPerSecond,
	}, handlers.Deps{Store: store, Tesla: tesla, Links: a.Links, Owners: a.Owners, Sessions: sessions, Usage: a.Usage, Cache: a.Cache,
		LinkSessions: a.LinkSessions, Logger: logger, Now: cfg.Now, Metrics: a.Metrics})
	return a, nil
}

// Handler is the HTTP handler to serve.
func (a *App) Handler() http.Handler { return a.Server.Handler() }

// Start runs the background loops until Stop: Tesla discovery (until it
// succeeds), the token cache's change listener, the usage flusher, the
// keep-alive refreshes and the cleanup of expired rows. ctx only carries
// values; the loops end with Stop.
func (a *App) Start(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	if !a.Tesla.Ready() {
		a.Tesla.StartDiscovery(bg)
	}
	a.spawn(func() { a.Usage.Run(bg) })
	if a.Cache != nil {
		a.spawn(func() { a.Cache.Run(bg, a.Store) })
	}
	if a.cfg.KeepAliveInterval > 0 {
		a.spawn(func() { a.Links.RunKeepAlive(bg, a.cfg.KeepAliveInterval, a.cfg.KeepAliveAge) })
	}
	if a.cfg.LinkCountInterval > 0 {
		a.spawn(func() { a.Metrics.RunLinkCounts(bg, a.cfg.LinkCountInterval) })
	}
	if a.cfg.CleanupInterval > 0 {
		a.spawn(func() { cleanupLoop(bg, a.Store, a.cfg.CleanupInterval, a.log) })
		a.spawn(func() { a.Owners.RunCleanup(bg, time.Hour) })
	}
}

func (a *App) spawn(f func()) {
	a.wg.Add(1)
	go func() { defer a.wg.Done(); f() }()
}

// Stop ends the background loops and waits for them; buffered usage is
// written on the way out. Call it after the HTTP server has shut down.
func (a *App) Stop() {
	a.mu.Lock()
	stop := a.stop
	a.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	a.wg.Wait()
}

// cleanupLoop deletes expired sessions and consumed login states now and then.
func cleanupLoop(ctx context.Context, store *db.Store, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := store.DeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			logger.Warn("cleanup failed", "error", err)
		} else if n > 0 {
			logger.Info("expired sessions removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
