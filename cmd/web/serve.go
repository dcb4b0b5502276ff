package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"teslalink/internal/app"
	"teslalink/internal/db"
	"teslalink/internal/fleet"
	"teslalink/internal/linksession"
	"teslalink/internal/oidc"
	"teslalink/internal/ratelimit"
)

// cmdServe runs the production server from the environment.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// TESLA_CLIENT_SECRET is optional: without it the service is a public
	// client (Tesla's open-source apps), PKCE only.
	cfg, err := loadConfig(nil, "PUBLIC_URL", "DATABASE_URL", "TESLA_CLIENT_ID",
		"TOKEN_ENCRYPTION_KEYS", "SESSION_KEYS")
	if err != nil {
		return err
	}
	if err := addrFlag("serve", args, cfg); err != nil {
		return err
	}
	if cfg.PublicURL.Scheme != "https" && !loopbackHost(cfg.PublicURL.Hostname()) {
		return &configError{"PUBLIC_URL", "must use https (plain http is only allowed for localhost)"}
	}
	cfg.InsecureCookie = cfg.PublicURL.Scheme != "https"
	lw := newLogWriter(stdout)
	defer lw.Close()
	logger := newLogger(cfg, lw)
	setMemoryLimit(cfg.MemoryLimit, logger)
	if addr := envOr("PPROF_ADDR", ""); addr != "" {
		if err := startPprof(addr, logger); err != nil {
			return err
		}
	}
	return runServer(ctx, cfg, logger, nil)
}

// setMemoryLimit gives the Go runtime its soft memory limit from
// MEMORY_LIMIT_MB, so the process stays within a container's memory without
// the operator knowing about GOMEMLIMIT; an explicit GOMEMLIMIT wins.
func setMemoryLimit(limit int64, logger *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		logger.Info("memory limit from GOMEMLIMIT; MEMORY_LIMIT_MB not applied", "limit_bytes", debug.SetMemoryLimit(-1))
		return
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// addrFlag applies --addr (it overrides ADDR).
func addrFlag(name string, args []string, cfg *Config) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", cfg.Addr, "listen address")
	if err := fs.Parse(args); err != nil {
		return &configError{"--addr", err.Error()}
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return &configError{"ADDR", "must be host:port, e.g. 127.0.0.1:8080"}
	}
	cfg.Addr = *addr
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore connects and applies migrations, waiting a little for a
// database that is still starting.
func openStore(ctx context.Context, cfg *Config, logger *slog.Logger) (*db.Store, []string, error) {
	store, err := db.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, nil, &configError{"DATABASE_URL", err.Error()}
	}
	store.SetListenURL(cfg.ListenDatabaseURL)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = store.Ping(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("database unreachable (check DATABASE_URL and that PostgreSQL is running): %w", errors.Unwrap(err))
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	for _, v := range applied {
		logger.Info("migration applied", "version", v)
	}
	return store, applied, nil
}

// teslaClients builds the Tesla clients from the configuration: the
// authorization server's (OpenID Connect) and the Fleet API's.
func teslaClients(cfg *Config, logger *slog.Logger) (*oidc.Client, *fleet.Client) {
	tesla := oidc.New(oidc.Config{
		DiscoveryURL: cfg.TeslaDiscoveryURL, ClientID: cfg.TeslaClientID, ClientSecret: cfg.TeslaClientSecret,
		RedirectURL: cfg.PublicURL.String() + "/auth/tesla/callback", TokenURL: cfg.TeslaTokenURL,
		Issuers: cfg.TeslaIssuers, CallbackIssuer: cfg.TeslaCallbackIssuer, Audience: cfg.TeslaAudience,
		DefaultAudience: cfg.TeslaRegionURLs["na"], Logger: logger.With("component", "tesla"),
		TokenBudget: ratelimit.NewBucket(float64(cfg.TeslaTokenRPS), cfg.TeslaTokenRPS, nil),
	})
	return tesla, fleet.New(fleet.Config{RegionBaseURLs: cfg.TeslaRegionURLs, Auth: tesla})
}

// runServer wires every dependency and serves until ctx ends, then shuts
// down gracefully: in-flight requests finish, buffered usage is written.
// ready, when not nil, is called with the listening address.
func runServer(ctx context.Context, cfg *Config, logger *slog.Logger, ready func(addr string)) error {
	store, _, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := checkTokenKeys(ctx, store, cfg); err != nil {
		return err
	}
	tesla, fleetAPI := teslaClients(cfg, logger)
	if tesla.PublicClient() {
		logger.Info("TESLA_CLIENT_SECRET is empty: acting as a public client (PKCE only, no secret sent; no partner registration)")
	}
	a, err := app.New(app.Config{
		ServiceName: cfg.ServiceName, PublicURL: cfg.PublicURL, InsecureCookies: cfg.InsecureCookie,
		OfferedScopes: cfg.OfferedScopes, DefaultScopes: cfg.DefaultScopes, SessionKeys: cfg.SessionKeys,
		TokenKeys: cfg.TokenKeys, PublicKeyPEM: cfg.TeslaPublicKeyPEM, TrustedProxies: cfg.TrustProxy,
		CanonicalHost: cfg.CanonicalHost, ConnectPerMinute: cfg.ConnectPerMinute, APIPerSecond: cfg.APIPerSecond,
		ForceRefreshCooldown: cfg.ForceRefreshCooldown,
		RefreshMargin:        cfg.RefreshMargin, SessionIdle: cfg.SessionIdle,
		SessionMaxAge: cfg.SessionMaxAge, TokenCacheBytes: cfg.TokenCacheBytes, UsageFlush: cfg.UsageFlush,
		Jobs: true, KeepAliveAge: cfg.KeepAliveAge, KeepAliveRate: cfg.KeepAliveRate, WebhookAllowPrivate: cfg.WebhookPrivate,
		ActivityRetention: cfg.ActivityRetention, Logger: logger,
		ReturnURLs: returnURLs(cfg), LinkSessionTTL: cfg.LinkSessionTTL, LinkCountInterval: linkCountInterval(cfg),
	}, store, tesla, fleetAPI)
	if ce := (*app.ConfigError)(nil); errors.As(err, &ce) {
		return &configError{ce.Setting, ce.Err.Error()}
	}
	if err != nil {
		return err
	}
	a.Start(ctx)
	defer a.Stop()
	stopMetrics, err := startMetrics(cfg, a, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL.String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if cfg.ShutdownDrain > 0 {
		// Rolling deploys: readiness fails first, so load balancers stop
		// sending new requests, while this instance still serves them.
		a.Server.Drain()
		logger.Info("draining: /readyz answers 503 while requests are still served", "for", cfg.ShutdownDrain.String())
		t := time.NewTimer(cfg.ShutdownDrain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("serve: %w", err)
		}
	}
	logger.Info("shutting down; waiting for in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("graceful shutdown incomplete", "error", err)
	}
	a.Stop()
	logger.Info("stopped")
	return nil
}

// checkTokenKeys refuses to start when stored tokens were sealed with a key
// that is not configured: they could never be opened (see docs/security.md,
// "Tokens at rest").
func checkTokenKeys(ctx context.Context, store *db.Store, cfg *Config) error {
	ids, err := store.TokenKeyIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.Contains(cfg.TokenKeys.IDs(), id) {
			return &configError{"TOKEN_ENCRYPTION_KEYS", fmt.Sprintf("stored tokens are sealed with key %q, which is not configured; "+
				"add it back (after the primary) and run 'web keys rotate' before removing it", id)}
		}
	}
	return nil
}

// localAddr is how this machine reaches a listen address: a wildcard host
// (all interfaces) becomes 127.0.0.1. addr is already validated host:port.
func localAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// returnURLs is the link sessions' allowlist: LINK_RETURN_URLS, plus any
// loopback URL in `web dev`.
func returnURLs(cfg *Config) *linksession.Allowlist {
	if cfg.ReturnLoopback {
		return linksession.LoopbackAllowlist(cfg.ReturnURLs)
	}
	return cfg.ReturnURLs
}
