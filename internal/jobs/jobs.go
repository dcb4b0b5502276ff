// Package jobs runs teslalink's background work on River, a job queue in
// PostgreSQL: webhook deliveries, the keep-alive of idle links, and the
// cleanup of expired rows. Jobs caused by a change are inserted in the
// transaction of that change, so a crash can neither lose one nor run one
// for a change that rolled back. Any number of instances share the queue.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/webhook"
)

// Config holds the Runner's dependencies and settings.
type Config struct {
	Store  *db.Store
	Links  *link.Service
	Sender *webhook.Sender
	Logger *slog.Logger

	// RetrySchedule is the wait before each retry of a failed delivery;
	// its length is the number of retries. Default: DefaultRetrySchedule.
	RetrySchedule []time.Duration

	KeepAliveAge   time.Duration // TOKEN_KEEPALIVE_AGE; default 720h
	KeepAliveRate  float64       // KEEPALIVE_RATE, refreshes per second; default 1
	KeepAliveEvery time.Duration // how often a keep-alive round starts; default 1 minute
	CleanupEvery   time.Duration // how often expired rows are removed; default 10 minutes
	// EventRetention is how long finished webhook events are kept; default 30 days.
	EventRetention time.Duration
	// Now is the clock for cleanup; default time.Now.
	Now func() time.Time
	// OnDelivery, when set, is told each delivery attempt's result:
	// "ok", "failed" (retried later) or "gave_up" (for metrics).
	OnDelivery func(result string)
	// Cleanups run with every cleanup job, after the expired sessions and
	// login states and the old webhook events.
	Cleanups []Cleanup
}

// Cleanup is one more thing the cleanup job deletes; Run returns how many rows.
type Cleanup struct {
	Name string
	Run  func(ctx context.Context) (int64, error)
}

// DefaultRetrySchedule spreads retries over about a day (before jitter):
// 5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 8 h, 8 h.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 8 * time.Hour, 8 * time.Hour}

// Queues.
const (
	queueWebhooks = "webhooks"
	queueDefault  = river.QueueDefault
)

// Runner owns the River client of one instance.
type Runner struct {
	cfg    Config
	client *river.Client[pgx.Tx]
	log    *slog.Logger

	mu      sync.Mutex
	started bool
}

// New builds a Runner and makes it the store's event sink: from then on
// every link change the store commits carries its webhook deliveries. The
// Runner inserts jobs at once; it works them only after Start.
func New(cfg Config) (*Runner, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	if cfg.KeepAliveAge <= 0 {
		cfg.KeepAliveAge = 30 * 24 * time.Hour
	}
	if cfg.KeepAliveRate <= 0 {
		cfg.KeepAliveRate = 1
	}
	if cfg.KeepAliveEvery <= 0 {
		cfg.KeepAliveEvery = time.Minute
	}
	if cfg.CleanupEvery <= 0 {
		cfg.CleanupEvery = 10 * time.Minute
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sender == nil {
		cfg.Sender = webhook.NewSender(webhook.SenderOptions{})
	}
	r := &Runner{cfg: cfg, log: cfg.Logger}
	workers := river.NewWorkers()
	river.AddWorker(workers, &deliveryWorker{r: r})
	river.AddWorker(workers, &keepAliveWorker{r: r})
	river.AddWorker(workers, &cleanupWorker{r: r})
	client, err := river.NewClient(riverpgxv5.New(cfg.Store.Pool()), &river.Config{
		Queues: map[string]river.QueueConfig{
			queueWebhooks: {MaxWorkers: 20},
			queueDefault:  {MaxWorkers: 2},
		},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.KeepAliveEvery),
				func() (river.JobArgs, *river.InsertOpts) { return keepAliveArgs{}, nil },
				&river.PeriodicJobOpts{ID: "keepalive", RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.CleanupEvery),
				func() (river.JobArgs, *river.InsertOpts) { return cleanupArgs{}, nil },
				&river.PeriodicJobOpts{ID: "cleanup", RunOnStart: true}),
		},
		Logger: cfg.Logger.With("component", "river"),
		// A delivery may wait up to the webhook timeout; a keep-alive round
		// paces itself for up to its interval.
		JobTimeout:           5 * time.Minute,
		RescueStuckJobsAfter: 15 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	r.client = client
	cfg.Store.SetEventSink(r)
	return r, nil
}

// Start works jobs until Stop (or until ctx ends).
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	if err := r.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	r.started = true
	return nil
}

// Stop lets running jobs finish (until ctx ends, then cancels them) and
// stops working jobs. Jobs not yet worked stay queued for any instance.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return nil
	}
	r.started = false
	err := r.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return r.client.StopAndCancel(context.Background())
	}
	return err
}

// LinkEvent records a link event in tx (db.EventSink): the event, one
// delivery per subscribed endpoint, and a River job per delivery, all in
// the transaction of the change.
func (r *Runner) LinkEvent(ctx context.Context, tx pgx.Tx, ev db.LinkEvent) error {
	body, err := webhook.Body(ev)
	if err != nil {
		return err
	}
	linkID := ev.Link.ID
	if ev.Type == db.EventOwnerErased {
		linkID = "" // the link row is gone; the id travels in the body only
	}
	ids, err := db.InsertEvent(ctx, tx, db.EventRecord{MsgID: webhook.NewMsgID(), Type: ev.Type, LinkID: linkID, Body: body})
	if err != nil || len(ids) == 0 {
		return err
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: deliveryArgs{DeliveryID: id},
			InsertOpts: &river.InsertOpts{MaxAttempts: len(r.cfg.RetrySchedule) + 1}}
	}
	if _, err := r.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}
