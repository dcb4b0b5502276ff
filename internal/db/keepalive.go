package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// KeepAliveClaim is one link the keep-alive may refresh now.
type KeepAliveClaim struct {
	LinkID   string
	Attempts int       // failed keep-alive attempts so far
	Slot     time.Time // when the global pace allows this refresh to start
}

// ClaimKeepAlive picks one active link last renewed before cutoff whose
// next keep-alive try is due at now, and claims it until now+lease, so no
// other instance picks it meanwhile (SKIP LOCKED: instances never wait for
// each other). It also reserves the next slot of the global pace: one
// refresh every interval across all instances. ok is false when no link is
// due.
func (s *Store) ClaimKeepAlive(ctx context.Context, cutoff, now time.Time, lease, interval time.Duration) (c KeepAliveClaim, ok bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id::text, keepalive_attempts FROM links
			WHERE status = 'active' AND coalesce(refreshed_at, linked_at) < $1
				AND (keepalive_next_at IS NULL OR keepalive_next_at <= $2)
			ORDER BY coalesce(refreshed_at, linked_at) LIMIT 1 FOR UPDATE SKIP LOCKED`, cutoff, now).Scan(&c.LinkID, &c.Attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE links SET keepalive_next_at = $2 WHERE id = $1`, c.LinkID, now.Add(lease)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `UPDATE keepalive_pace
			SET next_slot = greatest(next_slot, clock_timestamp()) + $1 * interval '1 microsecond'
			RETURNING next_slot - $1 * interval '1 microsecond'`, interval.Microseconds()).Scan(&c.Slot); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return KeepAliveClaim{}, false, fmt.Errorf("claim keep-alive: %w", err)
	}
	return c, ok, nil
}

// KeepAliveDone clears a link's keep-alive backoff after a refresh (or
// when none was needed any more).
func (s *Store) KeepAliveDone(ctx context.Context, linkID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE links SET keepalive_attempts = 0, keepalive_next_at = NULL, keepalive_error = ''
		WHERE id = $1 AND (keepalive_attempts <> 0 OR keepalive_next_at IS NOT NULL)`, linkID); err != nil {
		return fmt.Errorf("keep-alive done: %w", err)
	}
	return nil
}

// KeepAliveFailed records a failed keep-alive refresh: one more attempt,
// the next try at next, and what went wrong. When this attempt is the
// giveUpAt-th in a row, link.refresh_failed fires in the same transaction
// (once: later failures keep backing off quietly).
func (s *Store) KeepAliveFailed(ctx context.Context, linkID string, next time.Time, reason string, giveUpAt int) (attempts int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE links SET keepalive_attempts = keepalive_attempts + 1, keepalive_next_at = $2,
				keepalive_error = $3
			WHERE id = $1 AND status = 'active' RETURNING keepalive_attempts`, linkID, next, reason).Scan(&attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // revoked or flagged meanwhile
		}
		if err != nil {
			return err
		}
		if attempts == giveUpAt {
			return s.emit(ctx, tx, EventLinkRefreshFailed, linkID, "")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("keep-alive failed: %w", err)
	}
	return attempts, nil
}

// KeepAliveState is a link's keep-alive bookkeeping.
type KeepAliveState struct {
	Attempts int
	NextAt   time.Time // zero: due whenever it is stale
	Error    string
}

// GetKeepAliveState reads a link's keep-alive bookkeeping.
func (s *Store) GetKeepAliveState(ctx context.Context, linkID string) (KeepAliveState, error) {
	var st KeepAliveState
	var next *time.Time
	err := s.pool.QueryRow(ctx, `SELECT keepalive_attempts, keepalive_next_at, keepalive_error FROM links WHERE id = $1`, linkID).
		Scan(&st.Attempts, &next, &st.Error)
	if err != nil {
		return st, fmt.Errorf("keep-alive state: %w", notFound(err))
	}
	st.NextAt = deref(next)
	return st, nil
}

// DeleteOldWebhookEvents removes events older than retention (by the
// database's clock) whose deliveries are all finished, with their
// deliveries and attempts.
func (s *Store) DeleteOldWebhookEvents(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_events e WHERE e.created_at < now() - $1 * interval '1 second'
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')`, int64(retention.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("delete old webhook events: %w", err)
	}
	return tag.RowsAffected(), nil
}
