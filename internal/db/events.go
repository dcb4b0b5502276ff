package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Link event types, as webhooks name them.
const (
	EventLinkCreated        = "link.created"
	EventLinkUpdated        = "link.updated"
	EventLinkReauthRequired = "link.reauth_required"
	EventLinkRecovered      = "link.recovered"
	EventLinkRevoked        = "link.revoked"
	EventLinkRefreshFailed  = "link.refresh_failed"
	// EventOwnerErased says the owner of a link had everything erased; its
	// Link holds only the id and external_ref, and the event no link row.
	EventOwnerErased = "owner.erased"
)

// EventTypes lists every link event type.
var EventTypes = []string{EventLinkCreated, EventLinkUpdated, EventLinkReauthRequired, EventLinkRecovered,
	EventLinkRevoked, EventLinkRefreshFailed, EventOwnerErased}

// LinkEvent is a change to a link that the team's backends hear about.
type LinkEvent struct {
	Type string
	At   time.Time // when the change happened (the database's clock)
	Link *Link     // the link as this transaction leaves it
	// RevokedBy is "owner" or "team" for link.revoked.
	RevokedBy string
}

// EventSink records a link event inside the transaction that made the
// change, so the event commits or rolls back with it. The webhook side
// implements it (it writes the event and enqueues its deliveries with tx).
type EventSink interface {
	LinkEvent(ctx context.Context, tx pgx.Tx, ev LinkEvent) error
}

// SetEventSink makes the store report link events to sink. Without a sink
// no events are recorded (tests of the database layer alone; commands that
// change no link).
func (s *Store) SetEventSink(sink EventSink) { s.events = sink }

// emit reports an event about linkID in tx: the link is read again inside
// tx so the event shows it exactly as this transaction leaves it. Any
// function of this package that changes a link in a way the team must hear
// about calls it before committing.
func (s *Store) emit(ctx context.Context, tx pgx.Tx, typ, linkID, revokedBy string) error {
	if s.events == nil {
		return nil
	}
	l, err := scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1`, linkID))
	if err != nil {
		return fmt.Errorf("event %s: read link: %w", typ, err)
	}
	var at time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&at); err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	if err := s.events.LinkEvent(ctx, tx, LinkEvent{Type: typ, At: at, Link: l, RevokedBy: revokedBy}); err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	return nil
}
