package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"teslalink/internal/link"
)

type keepAliveArgs struct{}

func (keepAliveArgs) Kind() string { return "keepalive" }

// keepAliveWorker runs one keep-alive round: at most a round interval's
// worth of refreshes at the configured rate, so rounds do not pile up.
type keepAliveWorker struct {
	river.WorkerDefaults[keepAliveArgs]
	r *Runner
}

func (w *keepAliveWorker) Work(ctx context.Context, _ *river.Job[keepAliveArgs]) error {
	cfg := w.r.cfg
	limit := max(1, int(cfg.KeepAliveRate*cfg.KeepAliveEvery.Seconds()))
	n, err := cfg.Links.KeepAlive(ctx, link.KeepAliveOptions{MaxAge: cfg.KeepAliveAge, Rate: cfg.KeepAliveRate, Max: limit})
	if n > 0 {
		w.r.log.Info("keep-alive refreshed links", "count", n)
	}
	return err
}

func (w *keepAliveWorker) Timeout(*river.Job[keepAliveArgs]) time.Duration {
	return w.r.cfg.KeepAliveEvery + 2*time.Minute
}

type cleanupArgs struct{}

func (cleanupArgs) Kind() string { return "cleanup" }

// cleanupWorker removes expired sessions and login states, and finished
// webhook events past their retention.
type cleanupWorker struct {
	river.WorkerDefaults[cleanupArgs]
	r *Runner
}

func (w *cleanupWorker) Work(ctx context.Context, _ *river.Job[cleanupArgs]) error {
	cfg := w.r.cfg
	now := cfg.Now()
	n, err := cfg.Store.DeleteExpired(ctx, now)
	if err != nil {
		return err
	}
	m, err := cfg.Store.DeleteOldWebhookEvents(ctx, cfg.EventRetention)
	if err != nil {
		return err
	}
	if n+m > 0 {
		w.r.log.Info("expired rows removed", "sessions_and_states", n, "webhook_events", m)
	}
	for _, c := range cfg.Cleanups {
		k, err := c.Run(ctx)
		if err != nil {
			return fmt.Errorf("cleanup %s: %w", c.Name, err)
		}
		if k > 0 {
			w.r.log.Info("old rows removed", "what", c.Name, "rows", k)
		}
	}
	return nil
}
