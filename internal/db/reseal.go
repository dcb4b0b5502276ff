package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LinksSealedWithOtherKeys lists ids of links whose tokens are sealed with a
// key other than keyID, after afterID in id order (keyset pagination).
func (s *Store) LinksSealedWithOtherKeys(ctx context.Context, keyID, afterID string, limit int) ([]string, error) {
	if afterID == "" {
		afterID = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM links
		WHERE token_key_id IS NOT NULL AND token_key_id <> $1 AND id > $2::uuid ORDER BY id LIMIT $3`, keyID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list links to reseal: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list links to reseal: %w", err)
	}
	return ids, nil
}

// CountLinksSealedWith counts links whose tokens use keyID.
func (s *Store) CountLinksSealedWith(ctx context.Context, keyID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM links WHERE token_key_id = $1`, keyID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sealed links: %w", err)
	}
	return n, nil
}

// ResealLink locks the link and replaces its ciphertexts with what fn
// returns, without touching anything else (key rotation). A nil result
// leaves the row as it is.
func (s *Store) ResealLink(ctx context.Context, id string, fn func(l *Link) (*SealedTokens, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1 FOR UPDATE OF l`, id))
		if err != nil {
			return fmt.Errorf("lock link: %w", err)
		}
		sealed, err := fn(l)
		if err != nil || sealed == nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE links SET token_key_id = $2, refresh_token_sealed = $3, access_token_sealed = $4
			WHERE id = $1`, id, sealed.KeyID, sealed.Refresh, sealed.Access); err != nil {
			return fmt.Errorf("store resealed tokens: %w", err)
		}
		return nil
	})
}

// TokenKeyIDs lists the ids of every key that sealed a stored token.
func (s *Store) TokenKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT token_key_id FROM links WHERE token_key_id IS NOT NULL ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list token key ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list token key ids: %w", err)
	}
	return ids, nil
}
