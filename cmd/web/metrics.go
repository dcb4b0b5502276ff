package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"teslalink/internal/app"
)

// linkCountInterval is how often the links-by-status gauge is counted:
// only when metrics are served.
func linkCountInterval(cfg *Config) time.Duration {
	if cfg.MetricsAddr == "" {
		return 0
	}
	return 30 * time.Second
}

// startMetrics serves GET /metrics on METRICS_ADDR, a listener of its own:
// never the public port. It returns a function that stops it.
func startMetrics(cfg *Config, a *app.App, logger *slog.Logger) (stop func(), err error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	_, mport, _ := net.SplitHostPort(cfg.MetricsAddr)
	if _, port, _ := net.SplitHostPort(cfg.Addr); port == mport && port != "0" {
		return nil, &configError{"METRICS_ADDR", "must use another port than ADDR: metrics are never served on the public port"}
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil && cfg.MetricsDevDefault && errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // another web dev has the usual port
	}
	if err != nil {
		return nil, &configError{"METRICS_ADDR", fmt.Sprintf("cannot listen on %s: %v", cfg.MetricsAddr, err)}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "error", err)
		}
	}()
	logger.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
