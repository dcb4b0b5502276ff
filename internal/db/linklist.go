package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// LinkFilter selects links for ListLinks. Empty fields match everything.
type LinkFilter struct {
	Status   string // "active", "needs_reauth" or "revoked"
	OwnerSub string
	// ExternalRef selects links bound by a claim to this team user id.
	ExternalRef string
	After       string // keyset cursor: only links whose id sorts after this one
	Limit       int    // 1..1000; default 50
}

// LinkSummary is a link as listed for API clients: no token material, plus
// the last time any API client obtained its token.
type LinkSummary struct {
	Link
	LastUsedAt time.Time // zero when never
}

// listColumns are linkColumns without the ciphertexts, which listings never need.
var listColumns = strings.Replace(linkColumns, "l.refresh_token_sealed, l.access_token_sealed",
	"NULL::bytea, NULL::bytea", 1)

// ListLinks returns up to f.Limit links ordered by id, after f.After.
func (s *Store) ListLinks(ctx context.Context, f LinkFilter) ([]LinkSummary, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	var after *string
	if f.After != "" {
		if !ValidLinkID(f.After) {
			return nil, errors.New("list links: the cursor is not a link id")
		}
		after = &f.After
	}
	rows, err := s.pool.Query(ctx, `SELECT `+listColumns+`,
			(SELECT max(u.last_used_at) FROM link_usage u WHERE u.link_id = l.id)
		FROM links l JOIN owners o ON o.id = l.owner_id
		WHERE ($1 = '' OR l.status = $1) AND ($2 = '' OR o.sub = $2) AND ($3::uuid IS NULL OR l.id > $3::uuid)
			AND ($5 = '' OR l.external_ref = $5)
		ORDER BY l.id LIMIT $4`, f.Status, f.OwnerSub, after, f.Limit, f.ExternalRef)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LinkSummary, error) {
		var ls LinkSummary
		var n linkRow
		var lastUsed *time.Time
		if err := r.Scan(append(n.dest(), &lastUsed)...); err != nil {
			return ls, err
		}
		ls.Link, ls.LastUsedAt = *n.link(), deref(lastUsed)
		return ls, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// LinkLastUsed returns the last time any API client obtained the link's
// token (zero when never).
func (s *Store) LinkLastUsed(ctx context.Context, linkID string) (time.Time, error) {
	if !ValidLinkID(linkID) {
		return time.Time{}, nil
	}
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(last_used_at) FROM link_usage WHERE link_id = $1`, linkID).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("link last used: %w", err)
	}
	return deref(t), nil
}
