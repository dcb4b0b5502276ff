package link

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"teslalink/internal/db"
)

// KeepAliveOptions tune a keep-alive round.
type KeepAliveOptions struct {
	MaxAge time.Duration // refresh active links whose refresh token is older than this
	Rate   float64       // refreshes per second across all instances; default 1
	Max    int           // at most this many links in this round; 0: until none is due
	// GiveUpAt is the number of failed attempts in a row after which
	// link.refresh_failed fires; default 5.
	GiveUpAt int
}

// keepAliveLease is how long a claimed link is left to the instance that
// claimed it before another may try (a crashed instance's claim runs out).
const keepAliveLease = 10 * time.Minute

// KeepAliveBackoff is the wait before the next keep-alive attempt of a
// link that failed attempts times in a row: 5 minutes, doubling, at most
// a day, with ±20% jitter so failing links do not move in lockstep.
func KeepAliveBackoff(attempts int) time.Duration {
	d := 5 * time.Minute
	for i := 1; i < attempts && d < 24*time.Hour; i++ {
		d *= 2
	}
	d = min(d, 24*time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// KeepAlive refreshes active links whose refresh token was last renewed
// more than opts.MaxAge ago. Tesla's refresh tokens die after 3 months
// unused, so a link nobody asked a token for would otherwise be lost.
//
// Each link is claimed in the database first (SKIP LOCKED and a claim
// time), so any number of instances running rounds at once never pick the
// same link, and each refresh waits for its slot of the global pace, so
// together they stay under opts.Rate. The refresh itself is the same
// row-locked refresh as the API's. A link that fails backs off (attempts
// and the next try are stored on it) instead of being retried every round.
// It returns how many links were refreshed.
func (s *Service) KeepAlive(ctx context.Context, opts KeepAliveOptions) (int, error) {
	if opts.Rate <= 0 {
		opts.Rate = 1
	}
	if opts.GiveUpAt <= 0 {
		opts.GiveUpAt = 5
	}
	interval := time.Duration(float64(time.Second) / opts.Rate)
	n := 0
	for opts.Max <= 0 || n < opts.Max {
		now := s.now()
		cutoff := now.Add(-opts.MaxAge)
		c, ok, err := s.store.ClaimKeepAlive(ctx, cutoff, now, keepAliveLease, interval)
		if err != nil || !ok {
			return n, err
		}
		if wait := time.Until(c.Slot); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return n, ctx.Err() // the claim runs out; a later round takes the link
			case <-t.C:
			}
		}
		_, err = s.refresh(ctx, c.LinkID, func(cur *db.Link) bool {
			last := cur.RefreshedAt
			if last.IsZero() {
				last = cur.LinkedAt
			}
			return last.Before(cutoff)
		})
		switch {
		case err == nil:
			n++
			err = s.store.KeepAliveDone(ctx, c.LinkID)
		case errors.Is(err, ErrReauthRequired):
			// The link is flagged (and link.reauth_required sent); the owner must act.
			err = s.store.KeepAliveDone(ctx, c.LinkID)
		case ctx.Err() != nil:
			return n, ctx.Err()
		default:
			attempts := c.Attempts + 1
			next := now.Add(KeepAliveBackoff(attempts))
			s.log.Warn("keep-alive refresh failed; backing off", "link_id", c.LinkID, "attempts", attempts,
				"next_try", next, "error", err)
			_, err = s.store.KeepAliveFailed(ctx, c.LinkID, next, err.Error(), opts.GiveUpAt)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
