package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Usage is how often and when an API client last obtained a link's token.
type Usage struct {
	LinkID      string
	APIClientID int64
	ClientName  string
	LastUsedAt  time.Time
}

// RecordUsage adds a batch of uses in one statement.
func (s *Store) RecordUsage(ctx context.Context, batch []Usage) error {
	if len(batch) == 0 {
		return nil
	}
	links := make([]string, len(batch))
	clients := make([]int64, len(batch))
	ats := make([]time.Time, len(batch))
	for i, u := range batch {
		links[i], clients[i], ats[i] = u.LinkID, u.APIClientID, u.LastUsedAt
	}
	// One statement, so attribution and the owner's activity ("used by",
	// one entry per client and UTC day) are written together or not at all.
	_, err := s.pool.Exec(ctx, `WITH t AS (
			SELECT l.id AS link_id, l.owner_id, b.c, max(b.a) AS a
			FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS b(l, c, a)
			JOIN links l ON l.id = b.l::uuid
			GROUP BY l.id, l.owner_id, b.c),
		u AS (
			INSERT INTO link_usage (link_id, api_client_id, last_used_at)
			SELECT link_id, c, a FROM t
			ON CONFLICT (link_id, api_client_id) DO UPDATE SET
				last_used_at = greatest(link_usage.last_used_at, excluded.last_used_at)),
		-- The link's own stamp, read by the token endpoint on a cache miss
		-- (no change notification: the trigger ignores these columns).
		s AS (
			UPDATE links l SET used_by = t.c, used_at = t.a FROM t
			WHERE l.id = t.link_id AND (l.used_at IS NULL OR l.used_at <= t.a))
		INSERT INTO activity (owner_id, link_id, actor, action, api_client_id, at, day, detail)
		SELECT t.owner_id, t.link_id, 'api:' || c.name, '`+ActionUsed+`', t.c, t.a, (t.a AT TIME ZONE 'UTC')::date, '{}'::jsonb
		FROM t JOIN api_clients c ON c.id = t.c
		ON CONFLICT (link_id, action, api_client_id, day) WHERE day IS NOT NULL DO NOTHING`,
		links, clients, ats)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// LinkUsage lists, per API client, the last time it obtained the link's token, latest first.
func (s *Store) LinkUsage(ctx context.Context, linkID string) ([]Usage, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.link_id::text, u.api_client_id, c.name, u.last_used_at
		FROM link_usage u JOIN api_clients c ON c.id = u.api_client_id
		WHERE u.link_id = $1 ORDER BY u.last_used_at DESC`, linkID)
	if err != nil {
		return nil, fmt.Errorf("link usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Usage, error) {
		var u Usage
		err := r.Scan(&u.LinkID, &u.APIClientID, &u.ClientName, &u.LastUsedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("link usage: %w", err)
	}
	return out, nil
}
