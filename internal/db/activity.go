package db

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Activity actions: what happened to a link.
const (
	ActionLinked        = "link.created"        // linked (first time, or after a revoke), with the scopes granted
	ActionRenewed       = "link.renewed"        // signed in again with the same scopes
	ActionReconnected   = "link.reconnected"    // linked again after Tesla asked for it
	ActionScopesChanged = "link.scopes_changed" // permissions changed, here or on Tesla's page
	ActionRefreshed     = "link.refreshed"      // access renewed with Tesla (one entry per day)
	ActionUsed          = "link.used"           // an API client obtained a token (one entry per client and day)
	ActionNeedsReauth   = "link.needs_reauth"   // Tesla no longer accepts the link; detail.reason says why
	ActionRevoked       = "link.revoked"        // revoked; Actor says by whom
)

// addDaily records a once-a-day event (ActionRefreshed, ActionUsed): the
// first one of a UTC day creates the entry, later ones add to its count.
func addDaily(ctx context.Context, tx pgx.Tx, ev AuditEvent) error {
	n, _ := ev.Detail["count"].(int64)
	if n < 1 {
		n = 1
	}
	if _, err := tx.Exec(ctx, `INSERT INTO activity (owner_id, link_id, actor, action, api_client_id, at, day, detail)
		VALUES ($1, $2, $3, $4, $5, $6, ($6::timestamptz AT TIME ZONE 'UTC')::date, jsonb_build_object('count', $7::bigint))
		ON CONFLICT (link_id, action, api_client_id, day) WHERE day IS NOT NULL DO UPDATE
		SET detail = jsonb_set(activity.detail, '{count}', to_jsonb(coalesce((activity.detail->>'count')::bigint, 0) + $7::bigint))`,
		ev.OwnerID, ev.LinkID, ev.Actor, ev.Action, ev.APIClientID, ev.At, n); err != nil {
		return fmt.Errorf("activity %s: %w", ev.Action, err)
	}
	return nil
}

const activityColumns = `a.id, a.at, coalesce(a.owner_id, 0), coalesce(a.link_id::text, ''), a.actor, a.action, a.detail,
	a.api_client_id, coalesce(c.name, ''), coalesce(a.day, '0001-01-01'::date)`

const selectActivity = `SELECT ` + activityColumns + ` FROM activity a LEFT JOIN api_clients c ON c.id = a.api_client_id AND a.api_client_id <> 0 `

func scanActivity(r pgx.CollectableRow) (AuditEvent, error) {
	var ev AuditEvent
	err := r.Scan(&ev.ID, &ev.At, &ev.OwnerID, &ev.LinkID, &ev.Actor, &ev.Action, &ev.Detail, &ev.APIClientID, &ev.ClientName, &ev.Day)
	if ev.Day.Year() == 1 {
		ev.Day = time.Time{}
	}
	return ev, err
}

// OwnerActivity lists an owner's activity newest first: limit entries
// after skipping offset. It also says whether older entries follow.
func (s *Store) OwnerActivity(ctx context.Context, ownerID int64, offset, limit int) ([]AuditEvent, bool, error) {
	rows, err := s.pool.Query(ctx, selectActivity+`WHERE a.owner_id = $1 ORDER BY a.id DESC OFFSET $2 LIMIT $3`,
		ownerID, offset, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("owner activity: %w", err)
	}
	evs, err := pgx.CollectRows(rows, scanActivity)
	if err != nil {
		return nil, false, fmt.Errorf("owner activity: %w", err)
	}
	more := len(evs) > limit
	if more {
		evs = evs[:limit]
	}
	return evs, more, nil
}

// DeleteActivityBefore deletes activity older than cutoff, in batches of
// batch rows (so a large backlog never holds long locks), and returns how
// many rows it deleted.
func (s *Store) DeleteActivityBefore(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM activity WHERE id IN (
			SELECT id FROM activity WHERE at < $1 ORDER BY at LIMIT $2)`, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("delete old activity: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

func sameScopes(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// scopeDiff lists the scopes in now but not in before, and the reverse.
func scopeDiff(before, now []string) (added, removed []string) {
	added, removed = []string{}, []string{}
	for _, s := range now {
		if !slices.Contains(before, s) {
			added = append(added, s)
		}
	}
	for _, s := range before {
		if !slices.Contains(now, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
