// Package link is teslalink's core: it turns a completed Tesla login into a
// stored, sealed link, hands out valid access tokens (refreshing once, under
// a row lock, when needed), and revokes links.
package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/fleet"
	"teslalink/internal/oidc"
	"teslalink/internal/seal"
	"teslalink/internal/tokencache"
)

// Errors callers map to pages and API problems.
var (
	ErrRevoked        = errors.New("link is revoked")
	ErrReauthRequired = errors.New("the owner must link their Tesla account again")
	ErrMissingScope   = errors.New("the owner has not granted a required scope")
	ErrTeslaConfig    = errors.New("tesla rejected this service's client configuration")
	// ErrTeslaInvalidResponse means Tesla answered a refresh, but the answer
	// failed verification (e.g. the ID token's signature): a provider or
	// configuration fault, not a timeout.
	ErrTeslaInvalidResponse = errors.New("tesla's refresh answer failed verification")
	// ErrTokenKeyMissing means a stored token is sealed with a key this
	// instance does not have: typically an instance still running with the
	// old TOKEN_ENCRYPTION_KEYS after another one made a new key primary.
	ErrTokenKeyMissing = errors.New("a stored token is sealed with a key this instance does not have")
)

// UnavailableError means Tesla (or the database) could not serve the request
// now; RetryAfter is a hint for the caller.
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string { return "temporarily unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// translate turns an error from below the service (database, sealing,
// Tesla, this package's sentinels) into the *apperr.Error callers map.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	var unavailable *UnavailableError
	switch {
	case errors.Is(err, db.ErrNotFound):
		return apperr.Newf(apperr.NotFound, "No such link.", err)
	case errors.Is(err, ErrRevoked):
		return apperr.New(apperr.LinkRevoked, err)
	case errors.Is(err, ErrReauthRequired):
		return apperr.New(apperr.ReauthRequired, err)
	case errors.Is(err, ErrMissingScope):
		return apperr.New(apperr.ScopeNotGranted, err)
	case errors.Is(err, ErrTokenKeyMissing):
		return apperr.New(apperr.TokenKeyUnavailable, err)
	case errors.Is(err, ErrTeslaInvalidResponse):
		return apperr.New(apperr.TeslaInvalidResponse, err)
	case errors.Is(err, ErrTeslaConfig):
		return apperr.New(apperr.TeslaMisconfigured, err)
	case errors.Is(err, oidc.ErrTokenBudget):
		return &apperr.Error{Code: apperr.TeslaUnavailable, RetryAfter: max(time.Second, oidc.RetryAfterOf(err)),
			Detail: "This service is holding back its calls to Tesla to stay within Tesla's rate limit; retry later.", Err: err}
	case errors.As(err, &unavailable):
		return &apperr.Error{Code: apperr.TeslaUnavailable, RetryAfter: unavailable.RetryAfter, Err: err}
	case db.Unavailable(err):
		return apperr.New(apperr.DatabaseUnavailable, err)
	}
	return apperr.New(apperr.Internal, err)
}

// Config holds the Service's dependencies.
type Config struct {
	Store         *db.Store
	Tesla         *oidc.Client  // the authorization server: login, refresh
	Fleet         *fleet.Client // Tesla's Fleet API: region base URLs, region lookup, vehicles
	Keys          *seal.Keyring
	Logger        *slog.Logger
	Now           func() time.Time
	RefreshMargin time.Duration // refresh when the access token expires within this; default 5 minutes
	RefreshWait   time.Duration // deadline for one refresh including retries; default 20 seconds
	// ForceRefreshCooldown: a forced refresh within this long after the
	// link's last refresh returns that refresh's token instead of calling
	// Tesla again (each refresh ends the access tokens handed out before).
	// 0: 30 seconds; negative: no cooldown.
	ForceRefreshCooldown time.Duration
	// MaxRefreshes caps the refreshes this instance runs at once (each holds
	// a database connection while Tesla answers); the others wait for a slot
	// without holding one. 0: a quarter of the store's pool (at least 1).
	MaxRefreshes int
	// OfferedScopes are the optional scopes an owner may choose at login.
	OfferedScopes []string
	// Cache keeps API clients and access tokens in memory for IssueToken;
	// nil reads every request from the database.
	Cache *tokencache.Cache
	// OnRefresh, when set, is told of every refresh call to Tesla: its
	// result (RefreshResult) and its duration, retries included (metrics).
	OnRefresh func(result string, took time.Duration)
}

// Service implements linking, token brokering and revoking.
type Service struct {
	store   *db.Store
	tesla   *oidc.Client
	fleet   *fleet.Client
	keys    *seal.Keyring
	log     *slog.Logger
	now     func() time.Time
	margin  time.Duration
	wait    time.Duration
	offered []string
	cache   *tokencache.Cache
	// vehicles keeps vehicle lists for the account page for a minute.
	vehicles *vehicleCache
	// onRefresh is Config.OnRefresh, or a no-op.
	onRefresh func(result string, took time.Duration)

	inflight singleflight.Group // refreshes in progress on this instance, by link id
	cooldown time.Duration      // see Config.ForceRefreshCooldown; 0: none
	slots    chan struct{}      // one per refresh running; see Config.MaxRefreshes

	keyAlertAt atomic.Int64 // unix nanoseconds of the last missing-key operator alert
}

// Defaults of Config.
const (
	DefaultForceRefreshCooldown = 30 * time.Second
	DefaultMaxRefreshes         = 4
)

// New builds a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, tesla: cfg.Tesla, fleet: cfg.Fleet, keys: cfg.Keys, log: cfg.Logger, now: cfg.Now,
		margin: cfg.RefreshMargin, wait: cfg.RefreshWait,
		offered: cfg.OfferedScopes, cache: cfg.Cache, vehicles: newVehicleCache(time.Minute), onRefresh: cfg.OnRefresh}
	if s.onRefresh == nil {
		s.onRefresh = func(string, time.Duration) {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.margin <= 0 {
		s.margin = 5 * time.Minute
	}
	if s.wait <= 0 {
		s.wait = 20 * time.Second
	}
	switch {
	case cfg.ForceRefreshCooldown == 0:
		s.cooldown = DefaultForceRefreshCooldown
	case cfg.ForceRefreshCooldown > 0:
		s.cooldown = cfg.ForceRefreshCooldown
	}
	n := cfg.MaxRefreshes
	if n <= 0 {
		n = DefaultMaxRefreshes
		if cfg.Store != nil {
			n = max(1, cfg.Store.MaxConns()/4) // well below the pool, so pages and /readyz keep theirs
		}
	}
	s.slots = make(chan struct{}, n)
	return s
}

func adFor(linkID, purpose string) []byte { return []byte("teslalink/link/" + linkID + "/" + purpose) }

func (s *Service) sealTokens(linkID, refresh, access string) (db.SealedTokens, error) {
	r, err := s.keys.Seal([]byte(refresh), adFor(linkID, "refresh_token"))
	if err != nil {
		return db.SealedTokens{}, err
	}
	a, err := s.keys.Seal([]byte(access), adFor(linkID, "access_token"))
	if err != nil {
		return db.SealedTokens{}, err
	}
	return db.SealedTokens{KeyID: s.keys.PrimaryID(), Refresh: r, Access: a}, nil
}

func (s *Service) openToken(l *db.Link, purpose string) (string, error) {
	blob := l.AccessTokenSealed
	if purpose == "refresh_token" {
		blob = l.RefreshTokenSealed
	}
	return s.open(l.ID, l.TokenKeyID, purpose, blob)
}

// open opens one sealed token of a link; keyID is the key it was sealed with.
func (s *Service) open(linkID, keyID, purpose string, blob []byte) (string, error) {
	if blob == nil {
		return "", fmt.Errorf("link %s has no %s", linkID, purpose)
	}
	pt, err := s.keys.Open(blob, adFor(linkID, purpose))
	if errors.Is(err, seal.ErrUnknownKey) {
		s.alertMissingKey(linkID, keyID)
		return "", fmt.Errorf("%w: open %s of link %s: %w", ErrTokenKeyMissing, purpose, linkID, err)
	}
	if err != nil {
		return "", fmt.Errorf("open %s of link %s: %w", purpose, linkID, err)
	}
	return string(pt), nil
}

// keyAlertEvery bounds the missing-key alert to one log line per interval:
// during a rotation every token request would otherwise log it.
const keyAlertEvery = 30 * time.Second

// alertMissingKey tells the operator, at most every keyAlertEvery, that a
// token needs a key this instance lacks and how to fix it.
func (s *Service) alertMissingKey(linkID, keyID string) {
	now := time.Now().UnixNano()
	last := s.keyAlertAt.Load()
	if now-last < int64(keyAlertEvery) || !s.keyAlertAt.CompareAndSwap(last, now) {
		return
	}
	s.log.Error("OPERATOR ALERT: stored tokens are sealed with a key this instance does not have; "+
		"token requests answer 503 until it is added. Add that key to TOKEN_ENCRYPTION_KEYS on every instance "+
		"(as a secondary key) and restart this one; see the README on key rotation",
		"key_id", keyID, "link_id", linkID, "configured_keys", s.keys.IDs())
}

// Revoke deletes the link's tokens, marks it revoked and ends the owner's
// sessions (one transaction). Revoking twice is fine.
func (s *Service) Revoke(ctx context.Context, linkID, actor string) (*db.Link, error) {
	l, err := s.store.RevokeLink(ctx, linkID, actor)
	if err != nil {
		return nil, translate(err)
	}
	s.forget(l.ID)
	return l, nil
}
