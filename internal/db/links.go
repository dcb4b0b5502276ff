package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Link statuses.
const (
	StatusActive      = "active"
	StatusNeedsReauth = "needs_reauth"
	StatusRevoked     = "revoked"
)

// Link is one owner's grant, with its sealed tokens.
type Link struct {
	ID                   string
	OwnerID              int64
	OwnerSub             string
	OwnerEmail           string
	OwnerName            string
	Status               string
	StatusReason         string
	StatusChangedAt      time.Time
	Region               string
	IDTokenIssuer        string
	RequestedScopes      []string
	GrantedScopes        []string
	TokenKeyID           string
	RefreshTokenSealed   []byte
	AccessTokenSealed    []byte
	AccessTokenExpiresAt time.Time // zero when none
	LinkedAt             time.Time
	RefreshedAt          time.Time // zero when never
	RevokedAt            time.Time // zero when not revoked
	UpdatedAt            time.Time
	// ExternalRef is the team's user id, set by the newest claim of a link
	// session; "" when the link was never claimed.
	ExternalRef string
	// APIClient names the API client whose link session was claimed; "" when none.
	APIClient string
	// The last recorded use of the link's token (by any API client): by
	// whom and when; zero when none. Stamped by RecordUsage.
	UsedBy int64
	UsedAt time.Time
}

const linkColumns = `l.id::text, l.owner_id, o.sub, o.email, o.name, l.status, l.status_reason, l.status_changed_at,
	l.region, l.id_token_issuer, l.requested_scopes, l.granted_scopes, coalesce(l.token_key_id, ''),
	l.refresh_token_sealed, l.access_token_sealed, l.access_token_expires_at, l.linked_at, l.refreshed_at,
	l.revoked_at, l.updated_at, coalesce(l.external_ref, ''),
	coalesce((SELECT c.name FROM api_clients c WHERE c.id = l.api_client_id), ''), l.used_by, l.used_at`

// selectLink reads one link with its owner; callers add WHERE (and FOR UPDATE OF l).
const selectLink = `SELECT ` + linkColumns + ` FROM links l JOIN owners o ON o.id = l.owner_id `

// linkRow is the one scanner of linkColumns. Every destination may be
// NULL, so it reads a link, a listed link with more columns after it, and
// the API key lookup's outer join (no link: everything NULL).
type linkRow struct {
	id, sub, email, name, status, reason, region, iss, keyID *string
	ownerID                                                  *int64
	statusChanged, linked, updated, usedAt                   *time.Time
	accessExp, refreshed, revoked                            *time.Time
	usedBy                                                   *int64
	requested, granted                                       []string
	refreshSealed, accessSealed                              []byte
	externalRef, apiClient                                   *string
}

// dest returns the scan destinations, in linkColumns' order.
func (n *linkRow) dest() []any {
	return []any{&n.id, &n.ownerID, &n.sub, &n.email, &n.name, &n.status, &n.reason, &n.statusChanged,
		&n.region, &n.iss, &n.requested, &n.granted, &n.keyID, &n.refreshSealed, &n.accessSealed, &n.accessExp,
		&n.linked, &n.refreshed, &n.revoked, &n.updated, &n.externalRef, &n.apiClient, &n.usedBy, &n.usedAt}
}

// link returns the scanned link, or nil when the row held none.
func (n *linkRow) link() *Link {
	if n.id == nil {
		return nil
	}
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	l := &Link{ID: *n.id, OwnerSub: s(n.sub), OwnerEmail: s(n.email), OwnerName: s(n.name), Status: s(n.status),
		StatusReason: s(n.reason), StatusChangedAt: deref(n.statusChanged), Region: s(n.region), IDTokenIssuer: s(n.iss),
		RequestedScopes: n.requested, GrantedScopes: n.granted, TokenKeyID: s(n.keyID), RefreshTokenSealed: n.refreshSealed,
		AccessTokenSealed: n.accessSealed, AccessTokenExpiresAt: deref(n.accessExp), LinkedAt: deref(n.linked),
		RefreshedAt: deref(n.refreshed), RevokedAt: deref(n.revoked), UpdatedAt: deref(n.updated),
		ExternalRef: s(n.externalRef), APIClient: s(n.apiClient), UsedAt: deref(n.usedAt)}
	if n.ownerID != nil {
		l.OwnerID = *n.ownerID
	}
	if n.usedBy != nil {
		l.UsedBy = *n.usedBy
	}
	return l
}

// scanLink reads one link row.
func scanLink(row pgx.Row) (*Link, error) {
	var n linkRow
	if err := row.Scan(n.dest()...); err != nil {
		return nil, notFound(err)
	}
	l := n.link()
	if l == nil {
		return nil, ErrNotFound
	}
	return l, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// LinkGrant is what a completed login tells us about an owner and their grant.
type LinkGrant struct {
	Sub, Email, Name     string
	Region               string
	IDTokenIssuer        string
	RequestedScopes      []string
	GrantedScopes        []string
	AccessTokenExpiresAt time.Time
}

// SealedTokens are a link's tokens after sealing.
type SealedTokens struct {
	KeyID   string
	Refresh []byte
	Access  []byte
}

// SaveLink creates or updates the owner (by Tesla sub) and their one link,
// in one transaction. seal is called with the link's id so the tokens'
// associated data can bind them to that row.
func (s *Store) SaveLink(ctx context.Context, g LinkGrant, seal func(linkID string) (SealedTokens, error)) (*Link, error) {
	var link *Link
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ownerID int64
		err := tx.QueryRow(ctx, `INSERT INTO owners (sub, email, name) VALUES ($1, $2, $3)
			ON CONFLICT (sub) DO UPDATE SET
				email = CASE WHEN excluded.email <> '' THEN excluded.email ELSE owners.email END,
				name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE owners.name END,
				updated_at = now()
			RETURNING id`, g.Sub, g.Email, g.Name).Scan(&ownerID)
		if err != nil {
			return fmt.Errorf("upsert owner: %w", err)
		}
		// What the link was before, to record what this login changed.
		var prevStatus string
		var prevScopes []string
		err = tx.QueryRow(ctx, `SELECT status, granted_scopes FROM links WHERE owner_id = $1 FOR UPDATE`, ownerID).
			Scan(&prevStatus, &prevScopes)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read previous link: %w", err)
		}
		var linkID string
		var inserted bool
		err = tx.QueryRow(ctx, `INSERT INTO links (owner_id, status, region, id_token_issuer, requested_scopes, granted_scopes)
			VALUES ($1, 'active', $2, $3, coalesce($4, '{}'::text[]), coalesce($5, '{}'::text[]))
			ON CONFLICT (owner_id) DO UPDATE SET
				status = 'active', status_reason = '', status_changed_at = now(),
				region = excluded.region, id_token_issuer = excluded.id_token_issuer,
				requested_scopes = excluded.requested_scopes, granted_scopes = excluded.granted_scopes,
				linked_at = CASE WHEN links.status = 'revoked' THEN now() ELSE links.linked_at END,
				revoked_at = NULL, updated_at = now()
			RETURNING id::text, (xmax = 0)`,
			ownerID, g.Region, g.IDTokenIssuer, g.RequestedScopes, g.GrantedScopes).Scan(&linkID, &inserted)
		if err != nil {
			return fmt.Errorf("upsert link: %w", err)
		}
		sealed, err := seal(linkID)
		if err != nil {
			return fmt.Errorf("seal tokens: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE links SET token_key_id = $2, refresh_token_sealed = $3, access_token_sealed = $4,
				access_token_expires_at = $5, refreshed_at = now() WHERE id = $1`,
			linkID, sealed.KeyID, sealed.Refresh, sealed.Access, nullTime(g.AccessTokenExpiresAt)); err != nil {
			return fmt.Errorf("store tokens: %w", err)
		}
		ev := AuditEvent{OwnerID: ownerID, LinkID: linkID, Actor: "owner", Action: ActionLinked,
			Detail: map[string]any{"granted_scopes": nonNil(g.GrantedScopes), "requested_scopes": nonNil(g.RequestedScopes), "region": g.Region}}
		switch {
		case inserted || prevStatus == StatusRevoked:
		case prevStatus == StatusNeedsReauth:
			ev.Action = ActionReconnected
		case !sameScopes(prevScopes, g.GrantedScopes):
			ev.Action = ActionScopesChanged
			ev.Detail["added"], ev.Detail["removed"] = scopeDiff(prevScopes, g.GrantedScopes)
		default:
			ev.Action = ActionRenewed
		}
		if err := addAudit(ctx, tx, ev); err != nil {
			return err
		}
		for _, ev := range saveEvents(inserted, prevStatus, prevScopes, g.GrantedScopes) {
			if err := s.emit(ctx, tx, ev, linkID, ""); err != nil {
				return err
			}
		}
		link, err = scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1`, linkID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("save link: %w", err)
	}
	return link, nil
}

// GetLink returns one link by id.
func (s *Store) GetLink(ctx context.Context, id string) (*Link, error) {
	if !ValidLinkID(id) {
		return nil, ErrNotFound
	}
	l, err := scanLink(s.pool.QueryRow(ctx, selectLink+`WHERE l.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("get link: %w", err)
	}
	return l, nil
}

// LinkToken is what the token endpoint reads of a link: its status and
// its sealed access token, never the refresh token or the owner.
type LinkToken struct {
	Status               string
	Region               string
	GrantedScopes        []string
	TokenKeyID           string
	AccessTokenSealed    []byte
	AccessTokenExpiresAt time.Time
	// The last recorded use of the link (by any API client): by whom, when.
	UsedBy int64
	UsedAt time.Time
}

// GetLinkToken reads a link's LinkToken: one primary-key lookup, no join.
func (s *Store) GetLinkToken(ctx context.Context, id [16]byte) (*LinkToken, error) {
	var t LinkToken
	var exp, used *time.Time
	var usedBy *int64
	err := s.pool.QueryRow(ctx, `SELECT status, region, granted_scopes, coalesce(token_key_id, ''), access_token_sealed,
			access_token_expires_at, used_by, used_at FROM links WHERE id = $1`, pgtype.UUID{Bytes: id, Valid: true}).
		Scan(&t.Status, &t.Region, &t.GrantedScopes, &t.TokenKeyID, &t.AccessTokenSealed, &exp, &usedBy, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get link token: %w", err)
	}
	t.AccessTokenExpiresAt, t.UsedAt = deref(exp), deref(used)
	if usedBy != nil {
		t.UsedBy = *usedBy
	}
	return &t, nil
}

// GetLinkByOwner returns the owner's link.
func (s *Store) GetLinkByOwner(ctx context.Context, ownerID int64) (*Link, error) {
	l, err := scanLink(s.pool.QueryRow(ctx, selectLink+`WHERE l.owner_id = $1`, ownerID))
	if err != nil {
		return nil, fmt.Errorf("get link by owner: %w", err)
	}
	return l, nil
}

// TokenUpdate is the result of a refresh, to be stored on the link.
type TokenUpdate struct {
	Sealed               SealedTokens
	AccessTokenExpiresAt time.Time
	GrantedScopes        []string  // nil keeps the stored scopes
	Region               string    // "" keeps the stored region
	RefreshedAt          time.Time // when Tesla issued the tokens; zero means the database's now()
}

// RefreshLockTimeout bounds how long UpdateLinkLocked waits for the row
// lock (PostgreSQL's lock_timeout); then LockTimeout(err) holds.
const RefreshLockTimeout = 15 * time.Second

// LockTimeout reports whether err is PostgreSQL's lock_timeout (55P03).
func LockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// UpdateLinkLocked locks the link's row (SELECT ... FOR UPDATE) in a
// transaction, calls fn with the current row, stores the update fn returns
// (a nil update stores nothing), commits, and returns the link as committed.
// Concurrent callers for one link run one at a time, across all instances.
// If fn fails, nothing is written and its error is returned as is.
func (s *Store) UpdateLinkLocked(ctx context.Context, id string, fn func(l *Link) (*TokenUpdate, error)) (*Link, error) {
	if !ValidLinkID(id) {
		return nil, ErrNotFound
	}
	var out *Link
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Waiting for another refresh of this link is bounded by the server
		// too, not only by ctx: a waiter holds a pooled connection.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+strconv.Itoa(int(RefreshLockTimeout/time.Millisecond))+"ms'"); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
		l, err := scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1 FOR UPDATE OF l`, id))
		if err != nil {
			return fmt.Errorf("lock link: %w", err)
		}
		upd, err := fn(l)
		if err != nil {
			return err
		}
		if upd == nil {
			out = l
			return nil
		}
		out, err = scanLink(tx.QueryRow(ctx, `WITH u AS (
				UPDATE links SET token_key_id = $2, refresh_token_sealed = $3, access_token_sealed = $4,
					access_token_expires_at = $5, granted_scopes = coalesce($6, granted_scopes),
					region = CASE WHEN $7 = '' THEN region ELSE $7 END, refreshed_at = coalesce($8, now()), updated_at = now()
				WHERE id = $1 RETURNING *)
			SELECT `+linkColumns+` FROM u l JOIN owners o ON o.id = l.owner_id`,
			id, upd.Sealed.KeyID, upd.Sealed.Refresh, upd.Sealed.Access, nullTime(upd.AccessTokenExpiresAt),
			upd.GrantedScopes, upd.Region, nullTime(upd.RefreshedAt)))
		if err != nil {
			return fmt.Errorf("store refreshed tokens: %w", err)
		}
		at := upd.RefreshedAt
		if at.IsZero() {
			at = time.Now()
		}
		if err := addDaily(ctx, tx, AuditEvent{At: at, OwnerID: out.OwnerID, LinkID: id, Actor: "system", Action: ActionRefreshed}); err != nil {
			return err
		}
		if !sameScopes(l.GrantedScopes, out.GrantedScopes) {
			// Changed on Tesla's consent page; a refresh is where we learn it.
			added, removed := scopeDiff(l.GrantedScopes, out.GrantedScopes)
			if err := addAudit(ctx, tx, AuditEvent{OwnerID: out.OwnerID, LinkID: id, Actor: "tesla", Action: ActionScopesChanged,
				Detail: map[string]any{"granted_scopes": nonNil(out.GrantedScopes), "added": added, "removed": removed}}); err != nil {
				return err
			}
			return s.emit(ctx, tx, EventLinkUpdated, id, "")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MarkNeedsReauth flags an active link whose refresh token Tesla no longer
// accepts, if it still holds refusedToken (the sealed refresh token Tesla
// refused; a link renewed meanwhile is left alone). The link and its
// history are kept; the owner must link again.
func (s *Store) MarkNeedsReauth(ctx context.Context, id, reason string, refusedToken []byte) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ownerID int64
		err := tx.QueryRow(ctx, `UPDATE links SET status = 'needs_reauth', status_reason = $2, status_changed_at = now(), updated_at = now()
			WHERE id = $1 AND status = 'active' AND refresh_token_sealed = $3 RETURNING owner_id`, id, reason, refusedToken).Scan(&ownerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // already flagged, revoked or renewed
		}
		if err != nil {
			return fmt.Errorf("mark needs_reauth: %w", err)
		}
		if err := addAudit(ctx, tx, AuditEvent{OwnerID: ownerID, LinkID: id, Actor: "system", Action: ActionNeedsReauth,
			Detail: map[string]any{"reason": reason}}); err != nil {
			return err
		}
		return s.emit(ctx, tx, EventLinkReauthRequired, id, "")
	})
}

// RevokeLink deletes the link's token ciphertexts, marks it revoked and
// ends the owner's sessions, in one transaction. Revoking a revoked link
// changes nothing and is not an error.
func (s *Store) RevokeLink(ctx context.Context, id, actor string) (*Link, error) {
	if !ValidLinkID(id) {
		return nil, ErrNotFound
	}
	var out *Link
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := scanLink(tx.QueryRow(ctx, `WITH u AS (
				UPDATE links SET status = 'revoked', status_reason = $2, status_changed_at = now(), revoked_at = now(),
					token_key_id = NULL, refresh_token_sealed = NULL, access_token_sealed = NULL,
					access_token_expires_at = NULL, updated_at = now()
				WHERE id = $1 AND status <> 'revoked' RETURNING *)
			SELECT `+linkColumns+` FROM u l JOIN owners o ON o.id = l.owner_id`, id, "revoked by "+actor))
		if errors.Is(err, ErrNotFound) {
			out, err = scanLink(tx.QueryRow(ctx, selectLink+`WHERE l.id = $1`, id))
			return err
		}
		if err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		out = l
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE owner_id = $1`, l.OwnerID); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		if err := addAudit(ctx, tx, AuditEvent{OwnerID: l.OwnerID, LinkID: id, Actor: actor, Action: ActionRevoked}); err != nil {
			return err
		}
		by := "team"
		if actor == "owner" {
			by = "owner"
		}
		return s.emit(ctx, tx, EventLinkRevoked, id, by)
	})
	if err != nil {
		return nil, fmt.Errorf("revoke link: %w", err)
	}
	return out, nil
}

// AuditEvent records something that happened to an owner or link: one row
// of the activity the owner sees. It never holds token material.
type AuditEvent struct {
	ID      int64
	At      time.Time
	OwnerID int64
	LinkID  string
	// Actor is who did it: "owner", "api:<client name>", "tesla" or "system".
	Actor string
	// Action is one of the Action* constants.
	Action string
	Detail map[string]any
	// APIClientID and ClientName name the API client of an ActionUsed entry.
	APIClientID int64
	ClientName  string
	// Day is the UTC day of a once-a-day entry (ActionRefreshed,
	// ActionUsed); zero for the others.
	Day time.Time
}

func addAudit(ctx context.Context, tx pgx.Tx, ev AuditEvent) error {
	detail, err := json.Marshal(ev.Detail)
	if err != nil || ev.Detail == nil {
		detail = []byte("{}")
	}
	var owner *int64
	if ev.OwnerID != 0 {
		owner = &ev.OwnerID
	}
	var link *string
	if ev.LinkID != "" {
		link = &ev.LinkID
	}
	if _, err := tx.Exec(ctx, `INSERT INTO activity (owner_id, link_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))`,
		owner, link, ev.Actor, ev.Action, detail, nullTime(ev.At)); err != nil {
		return fmt.Errorf("audit %s: %w", ev.Action, err)
	}
	return nil
}

// AddAudit records an event outside any other transaction.
func (s *Store) AddAudit(ctx context.Context, ev AuditEvent) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return addAudit(ctx, tx, ev) })
}

// AuditForLink lists a link's events, oldest first.
func (s *Store) AuditForLink(ctx context.Context, linkID string) ([]AuditEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, coalesce(owner_id, 0), coalesce(link_id::text, ''), actor, action, detail
		FROM activity WHERE link_id = $1 ORDER BY id`, linkID)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var ev AuditEvent
		err := r.Scan(&ev.At, &ev.OwnerID, &ev.LinkID, &ev.Actor, &ev.Action, &ev.Detail)
		return ev, err
	})
}

// saveEvents tells which events a login that stored a link causes, given
// the link before it (prevStatus "" when there was none).
func saveEvents(inserted bool, prevStatus string, prevScopes, granted []string) []string {
	switch {
	case inserted || prevStatus == "" || prevStatus == StatusRevoked:
		return []string{EventLinkCreated}
	case prevStatus == StatusNeedsReauth && sameScopes(prevScopes, granted):
		return []string{EventLinkRecovered}
	case prevStatus == StatusNeedsReauth:
		return []string{EventLinkRecovered, EventLinkUpdated}
	case !sameScopes(prevScopes, granted):
		return []string{EventLinkUpdated}
	}
	return nil // the same grant again: nothing the team needs to hear
}
