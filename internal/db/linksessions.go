package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Link session statuses.
const (
	SessionPending = "pending" // created, not opened for Tesla yet
	SessionStarted = "started" // the owner went on to Tesla
	SessionLinked  = "linked"
	SessionDenied  = "denied"
	SessionError   = "error"
)

// LinkSession is a team backend's request to link one of its users.
type LinkSession struct {
	ID            int64
	APIClientID   int64
	APIClientName string
	// APIClientDisplay is the name owners see (the client's display name, else its name).
	APIClientDisplay string
	ExternalRef      string
	ReturnURL        string
	Scopes           []string
	State            string
	Status           string
	CreatedAt        time.Time
	ExpiresAt        time.Time
	StartedAt        time.Time // zero until started
	CompletedAt      time.Time // zero until completed
	LinkID           string    // "" unless linked
	CodeHash         []byte
	CodeExpiresAt    time.Time
	CodeSpentAt      time.Time // zero until a claim spent the code
	ClaimedAt        time.Time // zero until claimed
}

const linkSessionColumns = `s.id, s.api_client_id, c.name, coalesce(nullif(c.display_name, ''), c.name), s.external_ref,
	s.return_url, s.scopes, s.state, s.status, s.created_at, s.expires_at, s.started_at, s.completed_at,
	coalesce(s.link_id::text, ''), s.code_hash, s.code_expires_at, s.code_spent_at, s.claimed_at`

const selectLinkSession = `SELECT ` + linkSessionColumns + ` FROM link_sessions s JOIN api_clients c ON c.id = s.api_client_id `

func scanLinkSession(row pgx.Row) (*LinkSession, error) {
	var ls LinkSession
	var started, completed, codeExp, spent, claimed *time.Time
	err := row.Scan(&ls.ID, &ls.APIClientID, &ls.APIClientName, &ls.APIClientDisplay, &ls.ExternalRef, &ls.ReturnURL,
		&ls.Scopes, &ls.State, &ls.Status, &ls.CreatedAt, &ls.ExpiresAt, &started, &completed, &ls.LinkID, &ls.CodeHash,
		&codeExp, &spent, &claimed)
	if err != nil {
		return nil, notFound(err)
	}
	ls.StartedAt, ls.CompletedAt, ls.CodeExpiresAt = deref(started), deref(completed), deref(codeExp)
	ls.CodeSpentAt, ls.ClaimedAt = deref(spent), deref(claimed)
	return &ls, nil
}

// NewLinkSession is what CreateLinkSession stores.
type NewLinkSession struct {
	IDHash      []byte
	APIClientID int64
	ExternalRef string
	ReturnURL   string
	Scopes      []string
	State       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// CreateLinkSession stores a new pending link session.
func (s *Store) CreateLinkSession(ctx context.Context, n NewLinkSession) (*LinkSession, error) {
	if n.Scopes == nil {
		n.Scopes = []string{}
	}
	ls, err := scanLinkSession(s.pool.QueryRow(ctx, `WITH s AS (
			INSERT INTO link_sessions (id_hash, api_client_id, external_ref, return_url, scopes, state, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *)
		SELECT `+linkSessionColumns+` FROM s JOIN api_clients c ON c.id = s.api_client_id`,
		n.IDHash, n.APIClientID, n.ExternalRef, n.ReturnURL, n.Scopes, n.State, n.CreatedAt, n.ExpiresAt))
	if err != nil {
		return nil, fmt.Errorf("create link session: %w", err)
	}
	return ls, nil
}

// GetLinkSession finds a link session by the hash of its id.
func (s *Store) GetLinkSession(ctx context.Context, idHash []byte) (*LinkSession, error) {
	ls, err := scanLinkSession(s.pool.QueryRow(ctx, selectLinkSession+`WHERE s.id_hash = $1`, idHash))
	if err != nil {
		return nil, fmt.Errorf("get link session: %w", err)
	}
	return ls, nil
}

// GetLinkSessionByID finds a link session by its row id.
func (s *Store) GetLinkSessionByID(ctx context.Context, id int64) (*LinkSession, error) {
	ls, err := scanLinkSession(s.pool.QueryRow(ctx, selectLinkSession+`WHERE s.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get link session: %w", err)
	}
	return ls, nil
}

// ErrSessionNotPending means a link session was already started, or has expired.
var ErrSessionNotPending = errors.New("db: link session already used or expired")

// StartLinkSession moves a pending, unexpired session to started, once:
// of two concurrent starts, one gets ErrSessionNotPending.
func (s *Store) StartLinkSession(ctx context.Context, idHash []byte, now time.Time) (*LinkSession, error) {
	ls, err := scanLinkSession(s.pool.QueryRow(ctx, `WITH s AS (
			UPDATE link_sessions SET status = 'started', started_at = $2
			WHERE id_hash = $1 AND status = 'pending' AND expires_at > $2 RETURNING *)
		SELECT `+linkSessionColumns+` FROM s JOIN api_clients c ON c.id = s.api_client_id`, idHash, now))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSessionNotPending
	}
	if err != nil {
		return nil, fmt.Errorf("start link session: %w", err)
	}
	return ls, nil
}

// SessionOutcome is how the owner's round trip through Tesla ended.
type SessionOutcome struct {
	Status        string // SessionLinked, SessionDenied or SessionError
	LinkID        string // SessionLinked only
	CodeHash      []byte // SessionLinked only
	CodeExpiresAt time.Time
	At            time.Time
}

// CompleteLinkSession records the outcome of a started session, once; a
// session that is not started answers ErrSessionNotPending.
func (s *Store) CompleteLinkSession(ctx context.Context, id int64, o SessionOutcome) (*LinkSession, error) {
	var link *string
	if o.LinkID != "" {
		link = &o.LinkID
	}
	ls, err := scanLinkSession(s.pool.QueryRow(ctx, `WITH s AS (
			UPDATE link_sessions SET status = $2, link_id = $3::uuid, code_hash = $4, code_expires_at = $5, completed_at = $6
			WHERE id = $1 AND status = 'started' RETURNING *)
		SELECT `+linkSessionColumns+` FROM s JOIN api_clients c ON c.id = s.api_client_id`,
		id, o.Status, link, o.CodeHash, nullTime(o.CodeExpiresAt), o.At))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSessionNotPending
	}
	if err != nil {
		return nil, fmt.Errorf("complete link session: %w", err)
	}
	return ls, nil
}

// ClaimDecision is what a claim's caller decided about a locked session.
type ClaimDecision struct {
	Spend bool // mark the code spent (even when the claim is refused)
	Bind  bool // bind the link to the session's external_ref and API client
}

// Claim is the result of a successful ClaimLinkSession.
type Claim struct {
	Link *Link
	// PreviousExternalRef is the link's external_ref before the claim ("" when none).
	PreviousExternalRef string
	// PreviousAPIClient names the client the link was bound to before ("" when none).
	PreviousAPIClient string
	// Event is what the team hears: "link.created" when the claim first binds
	// the link to a team user, "link.updated" when it had an external_ref.
	Event string
}

// ClaimHook runs inside a claim's transaction after the link was bound, so
// whatever it writes (events) commits or rolls back with the binding.
type ClaimHook func(ctx context.Context, tx pgx.Tx, ls *LinkSession, c *Claim) error

// ClaimLinkSession locks the session whose id hashes to idHash and its link,
// asks decide what to do, and does it in one transaction. When decide
// returns an error, the code is still spent if it said so, nothing is bound,
// and the error is returned. hook (optional) runs after a binding.
func (s *Store) ClaimLinkSession(ctx context.Context, idHash []byte, now time.Time,
	decide func(ls *LinkSession, l *Link) (ClaimDecision, error), hook ClaimHook) (*Claim, error) {
	var out *Claim
	var refused error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ls, err := scanLinkSession(tx.QueryRow(ctx, selectLinkSession+`WHERE s.id_hash = $1 FOR UPDATE OF s`, idHash))
		if err != nil {
			return fmt.Errorf("lock link session: %w", err)
		}
		var l *Link
		if ls.LinkID != "" {
			l, err = scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1 FOR UPDATE OF l`, ls.LinkID))
			if err != nil {
				return fmt.Errorf("lock link: %w", err)
			}
		}
		d, derr := decide(ls, l)
		if d.Spend {
			if _, err := tx.Exec(ctx, `UPDATE link_sessions SET code_spent_at = $2 WHERE id = $1`, ls.ID, now); err != nil {
				return fmt.Errorf("spend claim code: %w", err)
			}
		}
		if derr != nil {
			refused = derr
			return nil // commit the spend, bind nothing
		}
		if !d.Bind || l == nil {
			return errors.New("claim: nothing to bind")
		}
		c := &Claim{PreviousExternalRef: l.ExternalRef, PreviousAPIClient: l.APIClient, Event: "link.created"}
		if l.ExternalRef != "" {
			c.Event = "link.updated"
		}
		if _, err := tx.Exec(ctx, `UPDATE links SET external_ref = $2, api_client_id = $3, updated_at = now() WHERE id = $1`,
			l.ID, ls.ExternalRef, ls.APIClientID); err != nil {
			return fmt.Errorf("bind link: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE link_sessions SET claimed_at = $2 WHERE id = $1`, ls.ID, now); err != nil {
			return fmt.Errorf("mark claimed: %w", err)
		}
		if err := addAudit(ctx, tx, AuditEvent{OwnerID: l.OwnerID, LinkID: l.ID, Actor: "api:" + ls.APIClientName, Action: "link.claimed",
			Detail: map[string]any{"external_ref": ls.ExternalRef, "previous_external_ref": l.ExternalRef}}); err != nil {
			return err
		}
		if c.Link, err = scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1`, l.ID)); err != nil {
			return fmt.Errorf("read claimed link: %w", err)
		}
		if hook != nil {
			if err := hook(ctx, tx, ls, c); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim link session: %w", err)
	}
	if refused != nil {
		return nil, refused
	}
	return out, nil
}

// SetAPIClientDisplayName sets the name owners see for a client ("" shows its name).
func (s *Store) SetAPIClientDisplayName(ctx context.Context, name, display string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_clients SET display_name = $2 WHERE name = $1 AND revoked_at IS NULL`, name, display)
	if err != nil {
		return fmt.Errorf("set api client display name: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set api client display name %q: %w", name, ErrNotFound)
	}
	return nil
}
