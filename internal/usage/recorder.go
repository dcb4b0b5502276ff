// Package usage attributes handed-out tokens to the API clients that asked,
// without a database write per request: uses are aggregated in memory and
// written in one batch per interval. A crash loses at most one interval of
// attribution (default 10 seconds); the tokens themselves are never recorded.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"teslalink/internal/db"
)

type key struct {
	linkID   string
	clientID int64
}

// Recorder buffers uses and flushes them periodically.
type Recorder struct {
	store    *db.Store
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[key]db.Usage
}

// New returns a Recorder; call Run to flush in the background.
func New(store *db.Store, interval time.Duration, logger *slog.Logger) *Recorder {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, interval: interval, log: logger, pending: make(map[key]db.Usage)}
}

// Record notes that clientID obtained a token for linkID at time at.
func (r *Recorder) Record(linkID string, clientID int64, at time.Time) {
	k := key{linkID, clientID}
	r.mu.Lock()
	u := r.pending[k]
	u.LinkID, u.APIClientID = linkID, clientID
	if at.After(u.LastUsedAt) {
		u.LastUsedAt = at
	}
	u.Uses++
	r.pending[k] = u
	r.mu.Unlock()
}

// Run flushes every interval until ctx ends, then flushes once more.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Error("final usage flush failed", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("usage flush failed; will retry", "error", err)
			}
		}
	}
}

// Flush writes what is buffered. On failure the uses are kept for the next try.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]db.Usage, 0, len(r.pending))
	for _, u := range r.pending {
		batch = append(batch, u)
	}
	r.pending = make(map[key]db.Usage)
	r.mu.Unlock()
	if err := r.store.RecordUsage(ctx, batch); err != nil {
		r.mu.Lock()
		for _, u := range batch {
			k := key{u.LinkID, u.APIClientID}
			cur := r.pending[k]
			cur.LinkID, cur.APIClientID = u.LinkID, u.APIClientID
			cur.Uses += u.Uses
			if u.LastUsedAt.After(cur.LastUsedAt) {
				cur.LastUsedAt = u.LastUsedAt
			}
			r.pending[k] = cur
		}
		r.mu.Unlock()
		return err
	}
	return nil
}
