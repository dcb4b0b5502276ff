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
	Uses        int64
}

// RecordUsage adds a batch of uses in one statement.
func (s *Store) RecordUsage(ctx context.Context, batch []Usage) error {
	if len(batch) == 0 {
		return nil
	}
	links := make([]string, len(batch))
	clients := make([]int64, len(batch))
	ats := make([]time.Time, len(batch))
	uses := make([]int64, len(batch))
	for i, u := range batch {
		links[i], clients[i], ats[i], uses[i] = u.LinkID, u.APIClientID, u.LastUsedAt, u.Uses
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO link_usage (link_id, api_client_id, last_used_at, uses)
		SELECT l::uuid, c, a, n FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::bigint[]) AS t(l, c, a, n)
		WHERE EXISTS (SELECT 1 FROM links WHERE id = l::uuid)
		ON CONFLICT (link_id, api_client_id) DO UPDATE SET
			last_used_at = greatest(link_usage.last_used_at, excluded.last_used_at),
			uses = link_usage.uses + excluded.uses`, links, clients, ats, uses)
	if err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// LinkUsage lists, per API client, the last time it obtained the link's token, latest first.
func (s *Store) LinkUsage(ctx context.Context, linkID string) ([]Usage, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.link_id::text, u.api_client_id, c.name, u.last_used_at, u.uses
		FROM link_usage u JOIN api_clients c ON c.id = u.api_client_id
		WHERE u.link_id = $1 ORDER BY u.last_used_at DESC`, linkID)
	if err != nil {
		return nil, fmt.Errorf("link usage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Usage, error) {
		var u Usage
		err := r.Scan(&u.LinkID, &u.APIClientID, &u.ClientName, &u.LastUsedAt, &u.Uses)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("link usage: %w", err)
	}
	return out, nil
}
