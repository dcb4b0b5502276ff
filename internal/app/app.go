// Package app wires teslalink once: from a store, the Tesla clients (the
// authorization server's and the Fleet API's) and the operator's settings it builds the link service, the owner sessions, the
// usage recorder, the token cache and the HTTP handlers, and it owns the
// background work (loops, and River jobs: see internal/jobs). `web serve`, `web dev` and the tests all use it, so the
// tests exercise the production wiring.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/db"
	"teslalink/internal/fleet"
	"teslalink/internal/handlers"
	"teslalink/internal/jobs"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/internal/metrics"
	"teslalink/internal/oidc"
	"teslalink/internal/owner"
	"teslalink/internal/seal"
	"teslalink/internal/session"
	"teslalink/internal/tokencache"
	"teslalink/internal/usage"
	"teslalink/internal/webhook"
)

// Config is everything the app needs besides its store and Tesla clients.
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
	// ForceRefreshCooldown: see link.Config (0: 30 s; negative: none).
	ForceRefreshCooldown time.Duration
	SessionIdle          time.Duration // 0: the session store's default
	SessionMaxAge        time.Duration // 0: the session store's default
	// SessionNow is the session store's clock; nil: time.Now.
	SessionNow func() time.Time
	// Now is the clock of the link service and the handlers; nil: time.Now.
	Now func() time.Time

	// TokenCacheBytes sizes the token cache; 0 turns it off.
	TokenCacheBytes int
	// UsageFlush is how often token-use attribution is written; 0: 10 seconds.
	UsageFlush time.Duration
	// Jobs makes Start work this instance's share of the background jobs
	// (River: webhook deliveries, keep-alive, cleanup). Without it, jobs are
	// still enqueued with every change, for any instance that works them.
	Jobs bool
	// KeepAliveInterval is how often a keep-alive round starts; 0: every minute.
	KeepAliveInterval time.Duration
	KeepAliveAge      time.Duration // refresh tokens older than this are renewed; 0: 720h
	KeepAliveRate     float64       // keep-alive refreshes per second across all instances; 0: 1
	// ReturnURLs is where link sessions may send owners back
	// (LINK_RETURN_URLS); nil or empty refuses every link session.
	ReturnURLs *linksession.Allowlist
	// LinkSessionTTL is how long a link session URL works; 0: 30 minutes.
	LinkSessionTTL time.Duration

	// CleanupInterval is how often expired sessions, login states, link
	// sessions, old activity and old webhook events are deleted; 0: every
	// 10 minutes.
	CleanupInterval time.Duration
	// WebhookAllowPrivate allows webhook targets on private and loopback addresses.
	WebhookAllowPrivate bool
	WebhookTimeout      time.Duration   // per delivery attempt; 0: 10 seconds
	RetrySchedule       []time.Duration // webhook retries; nil: about a day
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
	Tesla    *oidc.Client  // the authorization server (OpenID Connect)
	Fleet    *fleet.Client // Tesla's Fleet API
	Links    *link.Service
	Owners   *owner.Service
	Sessions *session.Store
	Usage    *usage.Recorder
	Cache    *tokencache.Cache // nil when TokenCacheBytes is 0
	Jobs     *jobs.Runner
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
func New(cfg Config, store *db.Store, tesla *oidc.Client, fleetAPI *fleet.Client) (*App, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &App{Store: store, Tesla: tesla, Fleet: fleetAPI, cfg: cfg, log: logger}
	if cfg.TokenCacheBytes > 0 {
		a.Cache = tokencache.New(time.Minute, cfg.TokenCacheBytes, logger.With("component", "tokencache"))
	}
	var cacheStats metrics.CacheStats
	if a.Cache != nil {
		cacheStats = a.Cache
	}
	a.Metrics = metrics.New(store, cacheStats, logger.With("component", "metrics"))
	a.Metrics.WatchTokenBudget(tesla.TokenBudget())
	a.Links = link.New(link.Config{Store: store, Tesla: tesla, Fleet: fleetAPI, Keys: cfg.TokenKeys, Logger: logger.With("component", "link"),
		Now: cfg.Now, RefreshMargin: cfg.RefreshMargin, ForceRefreshCooldown: cfg.ForceRefreshCooldown, OfferedScopes: cfg.OfferedScopes, Cache: a.Cache,
		OnRefresh: a.Metrics.Refresh})
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
		Logger: logger.With("component", "linksession"),
		// link.created (first claim) or link.updated (external_ref rebound),
		// written in the claim's transaction like every link event.
		OnClaim: func(ctx context.Context, tx pgx.Tx, _ *db.LinkSession, c *db.Claim) error {
			return a.Jobs.LinkEvent(ctx, tx, db.LinkEvent{Type: c.Event, At: c.Link.UpdatedAt, Link: c.Link})
		}})
	a.Owners = owner.New(owner.Config{Store: store, Links: a.Links, Retention: cfg.ActivityRetention, Logger: logger.With("component", "owner"),
		Now: cfg.Now})
	a.Jobs, err = jobs.New(jobs.Config{Store: store, Links: a.Links, Logger: logger.With("component", "jobs"),
		Sender:        webhook.NewSender(webhook.SenderOptions{AllowPrivate: cfg.WebhookAllowPrivate, Timeout: cfg.WebhookTimeout}),
		RetrySchedule: cfg.RetrySchedule, KeepAliveAge: cfg.KeepAliveAge, KeepAliveRate: cfg.KeepAliveRate,
		KeepAliveEvery: cfg.KeepAliveInterval, CleanupEvery: cfg.CleanupInterval, Now: cfg.Now,
		Cleanups:   []jobs.Cleanup{{Name: "owner activity", Run: a.Owners.CleanupActivity}},
		OnDelivery: a.Metrics.WebhookDelivery})
	if err != nil {
		return nil, err
	}
	a.Server = handlers.New(handlers.Config{
		ServiceName: cfg.ServiceName, PublicURL: cfg.PublicURL, SecureCookies: !cfg.InsecureCookies,
		OfferedScopes: cfg.OfferedScopes, DefaultScopes: cfg.DefaultScopes, SessionKeys: cfg.SessionKeys,
		PublicKeyPEM: cfg.PublicKeyPEM, TrustedProxies: cfg.TrustedProxies, CanonicalHost: cfg.CanonicalHost,
		ConnectPerMinute: cfg.ConnectPerMinute, APIPerSecond: cfg.APIPerSecond,
	}, handlers.Deps{Store: store, Tesla: tesla, Links: a.Links, Owners: a.Owners, Sessions: sessions, Usage: a.Usage,
		LinkSessions: a.LinkSessions, Logger: logger, Now: cfg.Now, Metrics: a.Metrics})
	return a, nil
}

// Handler is the HTTP handler to serve.
func (a *App) Handler() http.Handler { return a.Server.Handler() }

// Start runs the background loops until Stop: Tesla discovery (until it
// succeeds), the token cache's change listener, the usage flusher, and
// (with Config.Jobs) the River jobs: webhook deliveries, keep-alive
// refreshes and the cleanup of expired rows. ctx only carries
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
	if a.cfg.Jobs {
		if err := a.Jobs.Start(bg); err != nil {
			// Only a configuration mistake can fail here (caught by the tests).
			a.log.Error("background jobs did not start", "error", err)
		}
	}
	if a.cfg.LinkCountInterval > 0 {
		a.spawn(func() { a.Metrics.RunLinkCounts(bg, a.cfg.LinkCountInterval) })
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
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Jobs.Stop(ctx); err != nil {
		a.log.Warn("background jobs did not stop cleanly; unfinished ones run again on the next start", "error", err)
	}
	stop()
	a.wg.Wait()
}
