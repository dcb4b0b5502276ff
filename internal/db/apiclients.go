package db

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIClient is one of the team's backends, known by the SHA-256 of its key.
type APIClient struct {
	ID        int64
	Name      string
	KeyPrefix string // shown to operators; not secret
	Scopes    []string
	CreatedAt time.Time
	RevokedAt time.Time // zero when active

	// After a rotation, the previous key keeps working until OldKeyExpiresAt.
	OldKeyPrefix    string
	OldKeyExpiresAt time.Time // zero: no old key
	// Last uses, per key (zero: never, or not yet written).
	LastUsedAt       time.Time
	OldKeyLastUsedAt time.Time

	// UsedOldKey is set by Authenticate when the presented key is the old
	// one, still within its overlap.
	UsedOldKey bool
}

// CreateAPIClient stores a new client; ErrConflict when the name is taken.
func (s *Store) CreateAPIClient(ctx context.Context, name, prefix string, keyHash []byte, scopes []string) (*APIClient, error) {
	if scopes == nil {
		scopes = []string{}
	}
	c := APIClient{Name: name, KeyPrefix: prefix, Scopes: scopes}
	err := s.pool.QueryRow(ctx, `INSERT INTO api_clients (name, key_prefix, key_hash, scopes) VALUES ($1, $2, $3, $4)
		RETURNING id, created_at`, name, prefix, keyHash, scopes).Scan(&c.ID, &c.CreatedAt)
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("create api client %q: %w", name, ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("create api client: %w", err)
	}
	return &c, nil
}

// ListAPIClients lists every client, revoked ones included, by name (then
// oldest first), with the last use of each key. An old key whose overlap
// has ended is left out.
func (s *Store) ListAPIClients(ctx context.Context) ([]APIClient, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.name, c.key_prefix, c.scopes, c.created_at, c.revoked_at,
			CASE WHEN c.old_key_expires_at > now() THEN c.old_key_prefix END,
			CASE WHEN c.old_key_expires_at > now() THEN c.old_key_expires_at END,
			u.last_used_at, CASE WHEN c.old_key_expires_at > now() THEN ou.last_used_at END
		FROM api_clients c
		LEFT JOIN api_key_usage u ON u.key_hash = c.key_hash
		LEFT JOIN api_key_usage ou ON ou.key_hash = c.old_key_hash
		ORDER BY c.name, c.created_at`)
	if err != nil {
		return nil, fmt.Errorf("list api clients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIClient, error) {
		var c APIClient
		var revoked, oldExp, used, oldUsed *time.Time
		var oldPrefix *string
		err := r.Scan(&c.ID, &c.Name, &c.KeyPrefix, &c.Scopes, &c.CreatedAt, &revoked, &oldPrefix, &oldExp, &used, &oldUsed)
		c.RevokedAt, c.OldKeyExpiresAt, c.LastUsedAt, c.OldKeyLastUsedAt = deref(revoked), deref(oldExp), deref(used), deref(oldUsed)
		if oldPrefix != nil {
			c.OldKeyPrefix = *oldPrefix
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list api clients: %w", err)
	}
	return out, nil
}

// RevokeAPIClient revokes the active client of that name, both its keys, at
// once: the update's change notification evicts them from every instance's
// token cache. Revoking again returns the latest revoked client of that name
// unchanged. ErrNotFound when no client ever had that name.
func (s *Store) RevokeAPIClient(ctx context.Context, name string) (*APIClient, error) {
	var c APIClient
	var revoked *time.Time
	err := s.pool.QueryRow(ctx, `WITH r AS (
			UPDATE api_clients SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL
			RETURNING id, name, key_prefix, scopes, created_at, revoked_at)
		SELECT * FROM r
		UNION ALL
		(SELECT id, name, key_prefix, scopes, created_at, revoked_at FROM api_clients
		 WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM r) ORDER BY revoked_at DESC LIMIT 1)`, name).
		Scan(&c.ID, &c.Name, &c.KeyPrefix, &c.Scopes, &c.CreatedAt, &revoked)
	if err != nil {
		return nil, fmt.Errorf("revoke api client %q: %w", name, notFound(err))
	}
	c.RevokedAt = deref(revoked)
	return &c, nil
}

// RotateAPIKey gives the active client of that name a new key. Its current
// key becomes the old key and keeps working for overlap (0: stops at once);
// a still older key stops at once. The change notification evicts the
// previous keys from every instance's token cache. ErrNotFound when no
// active client has that name.
func (s *Store) RotateAPIKey(ctx context.Context, name, prefix string, keyHash []byte, overlap time.Duration) (*APIClient, error) {
	var c APIClient
	var oldExp *time.Time
	var oldPrefix *string
	err := s.pool.QueryRow(ctx, `UPDATE api_clients SET
			old_key_prefix = key_prefix, old_key_hash = key_hash,
			old_key_expires_at = now() + make_interval(secs => $4),
			key_prefix = $2, key_hash = $3
		WHERE name = $1 AND revoked_at IS NULL
		RETURNING id, name, key_prefix, scopes, created_at, old_key_prefix, old_key_expires_at`,
		name, prefix, keyHash, overlap.Seconds()).
		Scan(&c.ID, &c.Name, &c.KeyPrefix, &c.Scopes, &c.CreatedAt, &oldPrefix, &oldExp)
	if err != nil {
		return nil, fmt.Errorf("rotate api key of %q: %w", name, notFound(err))
	}
	c.OldKeyExpiresAt = deref(oldExp)
	if oldPrefix != nil {
		c.OldKeyPrefix = *oldPrefix
	}
	return &c, nil
}

// RecordKeyUse writes the last use of each key hash, in one statement.
func (s *Store) RecordKeyUse(ctx context.Context, hashes [][]byte, ats []time.Time) error {
	if len(hashes) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_key_usage (key_hash, last_used_at)
		SELECT h, max(a) FROM unnest($1::bytea[], $2::timestamptz[]) AS b(h, a) GROUP BY h
		ON CONFLICT (key_hash) DO UPDATE SET last_used_at = greatest(api_key_usage.last_used_at, excluded.last_used_at)`,
		hashes, ats)
	if err != nil {
		return fmt.Errorf("record key use: %w", err)
	}
	return nil
}

// ErrUnknownKey means no active API client has the key presented.
var ErrUnknownKey = errors.New("db: unknown or revoked api key")

// Authenticate returns the active client whose key hashes to keyHash.
func (s *Store) Authenticate(ctx context.Context, keyHash []byte) (*APIClient, error) {
	c, _, err := s.AuthenticateWithLink(ctx, keyHash, "")
	return c, err
}

// AuthenticateWithLink is the token endpoint's hot path: in one round trip
// it finds the active client whose key hashes to keyHash and, when linkID is
// not "", that link. The link is nil when it does not exist. Errors:
// ErrUnknownKey, or a database error.
func (s *Store) AuthenticateWithLink(ctx context.Context, keyHash []byte, linkID string) (*APIClient, *Link, error) {
	var id *string
	if ValidLinkID(linkID) {
		id = &linkID
	}
	var c APIClient
	var storedHash []byte
	var n linkRow // an outer join: no link leaves it all NULL
	dest := append([]any{&c.ID, &c.Name, &c.KeyPrefix, &c.Scopes, &c.CreatedAt, &storedHash, &c.UsedOldKey}, n.dest()...)
	err := s.pool.QueryRow(ctx, `SELECT c.id, c.name, c.key_prefix, c.scopes, c.created_at,
			CASE WHEN c.key_hash = $1 THEN c.key_hash ELSE c.old_key_hash END, c.key_hash <> $1,
			`+linkColumns+`
		FROM api_clients c
		LEFT JOIN (links l JOIN owners o ON o.id = l.owner_id) ON l.id = $2::uuid
		WHERE (c.key_hash = $1 OR (c.old_key_hash = $1 AND c.old_key_expires_at > now())) AND c.revoked_at IS NULL`,
		keyHash, id).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrUnknownKey
	}
	if err != nil {
		return nil, nil, fmt.Errorf("authenticate api key: %w", err)
	}
	// The index found the row by hash; compare again in constant time so
	// the check never depends on how the database compares bytes.
	if subtle.ConstantTimeCompare(storedHash, keyHash) != 1 {
		return nil, nil, ErrUnknownKey
	}
	return &c, n.link(), nil
}
