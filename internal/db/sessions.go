package db

import (
	"context"
	"fmt"
	"time"
)

// Session is a server-side browser session row.
type Session struct {
	IDHash     []byte
	OwnerID    int64 // 0 when not signed in
	Data       []byte
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateSession inserts a new session.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	var owner *int64
	if sess.OwnerID != 0 {
		owner = &sess.OwnerID
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO sessions (id_hash, owner_id, data, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $4, $5)`, sess.IDHash, owner, sess.Data, sess.CreatedAt, sess.ExpiresAt); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession returns a session by the hash of its id.
func (s *Store) GetSession(ctx context.Context, idHash []byte) (*Session, error) {
	var sess Session
	var owner *int64
	err := s.pool.QueryRow(ctx, `SELECT id_hash, owner_id, data, created_at, last_seen_at, expires_at
		FROM sessions WHERE id_hash = $1`, idHash).Scan(&sess.IDHash, &owner, &sess.Data, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", notFound(err))
	}
	if owner != nil {
		sess.OwnerID = *owner
	}
	return &sess, nil
}

// UpdateSession stores new data and the last-seen time.
func (s *Store) UpdateSession(ctx context.Context, idHash, data []byte, lastSeen time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET data = $2, last_seen_at = $3 WHERE id_hash = $1`, idHash, data, lastSeen)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update session: %w", ErrNotFound)
	}
	return nil
}

// TouchSession records activity (the idle timeout's clock) without
// rewriting the session's data, so it cannot undo a concurrent Save.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, lastSeen time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1`, idHash, lastSeen); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession removes one session.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteOwnerSessions ends every session of an owner (revoke).
func (s *Store) DeleteOwnerSessions(ctx context.Context, ownerID int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE owner_id = $1`, ownerID); err != nil {
		return fmt.Errorf("delete owner sessions: %w", err)
	}
	return nil
}

// DeleteExpired removes expired sessions, consumed login states and old link sessions.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	a, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	b, err := s.pool.Exec(ctx, `DELETE FROM used_login_states WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired login states: %w", err)
	}
	// A link session is kept a day past its URL's expiry and its claim code's, for support.
	c, err := s.pool.Exec(ctx, `DELETE FROM link_sessions WHERE expires_at < $1::timestamptz - interval '1 day'
		AND (code_expires_at IS NULL OR code_expires_at < $1::timestamptz - interval '1 day')`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired link sessions: %w", err)
	}
	return a.RowsAffected() + b.RowsAffected() + c.RowsAffected(), nil
}

// ConsumeLoginState records a login state's hash as used. It reports false
// when the state was used before (a replayed callback).
func (s *Store) ConsumeLoginState(ctx context.Context, stateHash []byte, expiresAt time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_login_states (state_hash, expires_at) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, stateHash, expiresAt)
	if err != nil {
		return false, fmt.Errorf("consume login state: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
