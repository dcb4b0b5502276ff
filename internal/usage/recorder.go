// Package usage attributes handed-out tokens to the API clients that asked,
// without a database write per request: the link service asks for a use to
// be recorded once per client, link and hour (link.UsageWindow), and those
// are aggregated in memory and written in one batch per interval. A crash loses at most one interval of
// attribution (default 10 seconds); the tokens themselves are never recorded.
package usage

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"teslalink/internal/db"
)

// key and use hold no pointers, so the pending map (one entry per link and
// client used since the last flush) costs the garbage collector nothing.
type key struct {
	link     [16]byte
	clientID int64
}

type use struct {
	last int64 // Unix nanoseconds
}

// Recorder buffers uses and flushes them periodically.
type Recorder struct {
	store    *db.Store
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending map[key]use
	keys    map[[32]byte]int64 // API key hash -> last use, Unix nanoseconds
}

// New returns a Recorder; call Run to flush in the background.
func New(store *db.Store, interval time.Duration, logger *slog.Logger) *Recorder {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, interval: interval, log: logger, pending: make(map[key]use), keys: make(map[[32]byte]int64)}
}

// Record notes that clientID obtained a token for linkID at time at.
func (r *Recorder) Record(linkID string, clientID int64, at time.Time) {
	id, ok := db.ParseLinkID(linkID)
	if !ok {
		return
	}
	k := key{id, clientID}
	r.mu.Lock()
	u := r.pending[k]
	u.last = max(u.last, at.UnixNano())
	r.pending[k] = u
	r.mu.Unlock()
}

// RecordKey notes that the API key with this SHA-256 was used at time at
// (shown by `web apiclient list`).
func (r *Recorder) RecordKey(hash []byte, at time.Time) {
	var h [32]byte
	copy(h[:], hash)
	r.mu.Lock()
	r.keys[h] = max(r.keys[h], at.UnixNano())
	r.mu.Unlock()
}

// flushKeys writes the buffered key uses; on failure they are kept.
func (r *Recorder) flushKeys(ctx context.Context) error {
	r.mu.Lock()
	if len(r.keys) == 0 {
		r.mu.Unlock()
		return nil
	}
	taken := r.keys
	r.keys = make(map[[32]byte]int64)
	r.mu.Unlock()
	hashes := make([][]byte, 0, len(taken))
	ats := make([]time.Time, 0, len(taken))
	for h, at := range taken {
		hashes = append(hashes, bytes.Clone(h[:]))
		ats = append(ats, time.Unix(0, at))
	}
	if err := r.store.RecordKeyUse(ctx, hashes, ats); err != nil {
		r.mu.Lock()
		for h, at := range taken {
			r.keys[h] = max(r.keys[h], at)
		}
		r.mu.Unlock()
		return err
	}
	return nil
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
	keyErr := r.flushKeys(ctx)
	if err := r.flushUses(ctx); err != nil {
		return err
	}
	return keyErr
}

func (r *Recorder) flushUses(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	taken := r.pending
	r.pending = make(map[key]use)
	r.mu.Unlock()
	var failed error
	batch := make([]db.Usage, 0, min(len(taken), flushChunk))
	for k, u := range taken {
		batch = append(batch, db.Usage{LinkID: db.FormatLinkID(k.link), APIClientID: k.clientID,
			LastUsedAt: time.Unix(0, u.last)})
		if len(batch) == flushChunk {
			if err := r.store.RecordUsage(ctx, batch); err != nil {
				failed = err
				break
			}
			for _, b := range batch {
				id, _ := db.ParseLinkID(b.LinkID)
				delete(taken, key{id, b.APIClientID})
			}
			batch = batch[:0]
		}
	}
	if failed == nil {
		failed = r.store.RecordUsage(ctx, batch)
	}
	if failed != nil {
		r.mu.Lock()
		for k, u := range taken {
			cur := r.pending[k]
			cur.last = max(cur.last, u.last)
			r.pending[k] = cur
		}
		r.mu.Unlock()
		return failed
	}
	return nil
}

// flushChunk bounds one statement (and the memory to build it).
const flushChunk = 2000
