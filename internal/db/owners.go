package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Owner is a Tesla account that linked, one per Tesla `sub`.
type Owner struct {
	ID        int64
	Sub       string
	Email     string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const selectOwner = `SELECT id, sub, email, name, created_at, updated_at FROM owners `

func scanOwner(row pgx.Row) (*Owner, error) {
	var o Owner
	if err := row.Scan(&o.ID, &o.Sub, &o.Email, &o.Name, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	return &o, nil
}

// GetOwner returns an owner by id.
func (s *Store) GetOwner(ctx context.Context, id int64) (*Owner, error) {
	o, err := scanOwner(s.pool.QueryRow(ctx, selectOwner+`WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get owner: %w", err)
	}
	return o, nil
}

// GetOwnerBySub returns an owner by Tesla subject.
func (s *Store) GetOwnerBySub(ctx context.Context, sub string) (*Owner, error) {
	o, err := scanOwner(s.pool.QueryRow(ctx, selectOwner+`WHERE sub = $1`, sub))
	if err != nil {
		return nil, fmt.Errorf("get owner by sub: %w", err)
	}
	return o, nil
}

// OwnerLinks lists every link of an owner, oldest first.
func (s *Store) OwnerLinks(ctx context.Context, ownerID int64) ([]*Link, error) {
	rows, err := s.pool.Query(ctx, selectLink+`WHERE l.owner_id = $1 ORDER BY l.created_at, l.id`, ownerID)
	if err != nil {
		return nil, fmt.Errorf("owner links: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Link, error) { return scanLink(r) })
	if err != nil {
		return nil, fmt.Errorf("owner links: %w", err)
	}
	return out, nil
}

// Erased says what EraseOwner deleted.
type Erased struct {
	OwnerSub string
	// LinkIDs are the links deleted (with their tokens).
	LinkIDs []string
	// Tokens counts the token ciphertexts deleted (refresh and access).
	Tokens   int
	Sessions int
	Activity int
	// Usage counts the per-API-client attribution rows deleted.
	Usage int
	// WebhookEvents counts the link events deleted (with their deliveries).
	WebhookEvents int
	// LinkSessions counts the team's link sessions that had ended in the
	// erased links.
	LinkSessions int
}

// EraseOwner deletes an owner and everything stored about them, in one
// transaction: their links with the token ciphertexts, the usage
// attribution, their sessions, their activity, the webhook events about
// their links and the owner row itself; then, with an event sink, it
// records one owner.erased event per erased link.
// The links' deletion notifies every instance's token cache.
func (s *Store) EraseOwner(ctx context.Context, ownerID int64) (*Erased, error) {
	var out Erased
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT sub FROM owners WHERE id = $1 FOR UPDATE`, ownerID).Scan(&out.OwnerSub); err != nil {
			return fmt.Errorf("lock owner: %w", notFound(err))
		}
		rows, err := tx.Query(ctx, `SELECT id::text, coalesce(external_ref, ''),
				(refresh_token_sealed IS NOT NULL)::int + (access_token_sealed IS NOT NULL)::int
			FROM links WHERE owner_id = $1 ORDER BY id FOR UPDATE`, ownerID)
		if err != nil {
			return fmt.Errorf("lock links: %w", err)
		}
		var refs []string
		for rows.Next() {
			var id, ref string
			var tokens int
			if err := rows.Scan(&id, &ref, &tokens); err != nil {
				rows.Close()
				return fmt.Errorf("lock links: %w", err)
			}
			out.LinkIDs = append(out.LinkIDs, id)
			refs = append(refs, ref)
			out.Tokens += tokens
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock links: %w", err)
		}
		count := func(what *int, sql string) error {
			tag, err := tx.Exec(ctx, sql, ownerID)
			if err != nil {
				return fmt.Errorf("erase: %w", err)
			}
			*what = int(tag.RowsAffected())
			return nil
		}
		var links, owners int
		for _, step := range []struct {
			n   *int
			sql string
		}{
			{&out.Activity, `DELETE FROM activity WHERE owner_id = $1 OR link_id IN (SELECT id FROM links WHERE owner_id = $1)`},
			{&out.Usage, `DELETE FROM link_usage WHERE link_id IN (SELECT id FROM links WHERE owner_id = $1)`},
			{&out.Sessions, `DELETE FROM sessions WHERE owner_id = $1`},
			// Webhook events carry the link as the API showed it (email
			// included); undelivered ones are dropped with them.
			{&out.WebhookEvents, `DELETE FROM webhook_events WHERE link_id IN (SELECT id FROM links WHERE owner_id = $1)`},
			// The team's link sessions that ended in these links (they name
			// the link, and a linked session must keep its link).
			{&out.LinkSessions, `DELETE FROM link_sessions WHERE link_id IN (SELECT id FROM links WHERE owner_id = $1)`},
			{&links, `DELETE FROM links WHERE owner_id = $1`},
			{&owners, `DELETE FROM owners WHERE id = $1`},
		} {
			if err := count(step.n, step.sql); err != nil {
				return err
			}
		}
		if owners != 1 || links != len(out.LinkIDs) {
			return errors.New("erase: owner or links changed during the erase")
		}
		// The team hears of each erased link, in this transaction, by its
		// id and external_ref alone (EventOwnerErased).
		if s.events == nil {
			return nil
		}
		var at time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&at); err != nil {
			return fmt.Errorf("event %s: %w", EventOwnerErased, err)
		}
		for i, id := range out.LinkIDs {
			if err := s.events.LinkEvent(ctx, tx, LinkEvent{Type: EventOwnerErased, At: at,
				Link: &Link{ID: id, ExternalRef: refs[i]}}); err != nil {
				return fmt.Errorf("event %s: %w", EventOwnerErased, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
