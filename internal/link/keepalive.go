package link

import (
	"context"
	"errors"
	"time"

	"teslalink/internal/db"
)

// KeepAlive refreshes active links whose refresh token was last renewed
// before maxAge ago. Tesla's refresh tokens die after 3 months unused, so a
// link nobody asked a token for would otherwise be lost. Each link goes
// through the same row-locked refresh as the API, so several instances
// running this at once still refresh each link once. It returns how many
// links were refreshed.
func (s *Service) KeepAlive(ctx context.Context, maxAge time.Duration, batch int) (int, error) {
	cutoff := s.now().Add(-maxAge)
	n, after := 0, ""
	for {
		ids, err := s.store.StaleLinkIDs(ctx, cutoff, after, batch)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		after = ids[len(ids)-1]
		for _, id := range ids {
			_, err := s.refresh(ctx, id, func(cur *db.Link) bool {
				last := cur.RefreshedAt
				if last.IsZero() {
					last = cur.LinkedAt
				}
				return last.Before(cutoff)
			})
			switch {
			case err == nil:
				n++
			case errors.Is(err, ErrReauthRequired):
				// recorded on the link; the owner sees it
			default:
				if ctx.Err() != nil {
					return n, ctx.Err()
				}
				s.log.Warn("keep-alive refresh failed; will retry next round", "link_id", id, "error", err)
			}
		}
	}
}

// RunKeepAlive calls KeepAlive every interval until ctx ends.
func (s *Service) RunKeepAlive(ctx context.Context, interval, maxAge time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.KeepAlive(ctx, maxAge, 200); err != nil && ctx.Err() == nil {
			s.log.Warn("keep-alive round failed", "error", err)
		} else if n > 0 {
			s.log.Info("keep-alive refreshed links", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
