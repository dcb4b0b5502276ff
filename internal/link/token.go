package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/oidc"
)

// Token is a valid access token for a link.
type Token struct {
	AccessToken     string
	ExpiresAt       time.Time
	Scopes          []string
	Region          string
	FleetAPIBaseURL string
	LinkID          string
	Link            *db.Link // the link as read from the database; nil when the token came from the cache
}

// TokenRequest tunes AccessToken.
type TokenRequest struct {
	ForceRefresh bool
	Scopes       []string // each must be granted, else ErrMissingScope
}

// AccessToken returns a valid access token for the link, refreshing first
// when it expires within the margin (or when forced). Refreshes of one link
// are serialised across instances by the row lock: a caller that waited for
// the lock finds the fresh token and does not refresh again. The new refresh
// token is committed before the new access token is returned.
func (s *Service) AccessToken(ctx context.Context, linkID string, req TokenRequest) (*Token, error) {
	l, err := s.store.GetLink(ctx, linkID)
	if err != nil {
		return nil, translate(err)
	}
	tok, err := s.accessToken(ctx, l, req)
	if err != nil {
		return nil, translate(err)
	}
	return tok, nil
}

// accessToken is AccessToken for a link just read from the database: when
// its access token is still valid no further database call is made;
// otherwise the refresh re-reads the row under its lock.
func (s *Service) accessToken(ctx context.Context, l *db.Link, req TokenRequest) (*Token, error) {
	started := s.now()
	linkID := l.ID
	if err := usable(l, req.Scopes); err != nil {
		return nil, err
	}
	if !req.ForceRefresh && l.AccessTokenExpiresAt.After(started.Add(s.margin)) {
		return s.token(l)
	}
	if req.ForceRefresh && s.cooldown > 0 && !l.RefreshedAt.IsZero() && s.now().Sub(l.RefreshedAt) < s.cooldown &&
		l.AccessTokenExpiresAt.After(s.now().Add(s.margin)) {
		// Refreshed moments ago (by anyone, on any instance): hand out that
		// refresh's token rather than end it with another refresh.
		return s.token(l)
	}
	seen := l.RefreshTokenSealed
	needed := func(cur *db.Link) bool {
		if req.ForceRefresh {
			// Someone refreshed (or relinked) after we read the row: good enough.
			// Compared by ciphertext, not time: RefreshedAt comes from the
			// database's clock, started from ours.
			return bytes.Equal(cur.RefreshTokenSealed, seen)
		}
		return !cur.AccessTokenExpiresAt.After(s.now().Add(s.margin))
	}
	// Callers on this instance share one refresh (and one database
	// connection) per link, forced ones among themselves: a forced caller
	// that arrives while one runs gets that refresh's token. The row lock
	// serialises the instances.
	key := linkID
	if req.ForceRefresh {
		key = "force:" + linkID
	}
	v, err, _ := s.inflight.Do(key, func() (any, error) {
		return s.refresh(context.WithoutCancel(ctx), linkID, needed)
	})
	l, _ = v.(*db.Link)
	if err != nil {
		return nil, err
	}
	if err := usable(l, req.Scopes); err != nil {
		return nil, err
	}
	return s.token(l)
}

func usable(l *db.Link, scopes []string) error {
	switch l.Status {
	case db.StatusRevoked:
		return ErrRevoked
	case db.StatusNeedsReauth:
		return ErrReauthRequired
	}
	for _, sc := range scopes {
		if !slices.Contains(l.GrantedScopes, sc) {
			return fmt.Errorf("%w: %s", ErrMissingScope, sc)
		}
	}
	return nil
}

func (s *Service) token(l *db.Link) (*Token, error) {
	at, err := s.openToken(l, "access_token")
	if err != nil {
		return nil, err
	}
	base, _ := s.fleet.RegionBaseURL(l.Region)
	return &Token{AccessToken: at, ExpiresAt: l.AccessTokenExpiresAt, Scopes: l.GrantedScopes, Region: l.Region,
		FleetAPIBaseURL: base, LinkID: l.ID, Link: l}, nil
}

// refresh runs one refresh under the link's row lock when needed(cur) holds.
func (s *Service) refresh(ctx context.Context, linkID string, needed func(cur *db.Link) bool) (*db.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	// A slot first, so waiting refreshes hold no database connection.
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return nil, &UnavailableError{RetryAfter: 2 * time.Second, Err: fmt.Errorf("no refresh slot free: %w", ctx.Err())}
	}
	var teslaErr error
	var failedWith []byte // the sealed refresh token Tesla refused
	wrote := false
	l, err := s.store.UpdateLinkLocked(ctx, linkID, func(cur *db.Link) (*db.TokenUpdate, error) {
		wrote = false
		if cur.Status != db.StatusActive || !needed(cur) {
			return nil, nil
		}
		rt, err := s.openToken(cur, "refresh_token")
		if err != nil {
			return nil, err
		}
		called := time.Now()
		tok, err := s.tesla.Refresh(ctx, rt, cur.IDTokenIssuer, cur.OwnerSub)
		s.onRefresh(RefreshResult(err), time.Since(called))
		if err != nil {
			teslaErr, failedWith = err, cur.RefreshTokenSealed
			return nil, err
		}
		if tok.RefreshToken == "" {
			tok.RefreshToken = rt // no new one issued: the current one stays valid (RFC 6749 6)
		}
		sealed, err := s.sealTokens(cur.ID, tok.RefreshToken, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		upd := &db.TokenUpdate{Sealed: sealed, AccessTokenExpiresAt: s.expiry(tok), GrantedScopes: tok.Scopes, RefreshedAt: s.now()}
		if tok.Region != "" {
			if _, ok := s.fleet.RegionBaseURL(tok.Region); ok {
				upd.Region = tok.Region
			}
		}
		wrote = true
		return upd, nil
	})
	if err == nil {
		if wrote {
			s.forget(linkID) // the notification tells the other instances
		}
		return l, nil
	}
	if teslaErr == nil {
		if (errors.Is(err, context.DeadlineExceeded) || db.LockTimeout(err)) && !db.Unavailable(err) {
			// Waited too long for another refresh of this link to finish.
			return nil, &UnavailableError{RetryAfter: 2 * time.Second, Err: err}
		}
		return nil, err // database trouble is classified by the caller
	}
	return nil, s.refreshFailed(ctx, linkID, failedWith, teslaErr)
}

// Reasons a link needs the owner to link again (stored as its status reason).
const (
	ReasonRefreshRefused = "Tesla no longer accepts the stored refresh token"
	ReasonOtherAccount   = "Tesla returned an ID token for another account"
)

// refreshFailed decides what a failed refresh means for the link.
func (s *Service) refreshFailed(ctx context.Context, linkID string, failedWith []byte, teslaErr error) error {
	mismatch := errors.Is(teslaErr, oidc.ErrSubMismatch) || errors.Is(teslaErr, oidc.ErrIssuerMismatch)
	switch {
	case oidc.KindOf(teslaErr) == oidc.KindReauth || mismatch:
		reason := ReasonRefreshRefused
		if mismatch {
			reason = ReasonOtherAccount
		}
		// Only if the row still holds the token Tesla refused: a re-link
		// that happened meanwhile must not be flagged.
		if err := s.store.MarkNeedsReauth(context.WithoutCancel(ctx), linkID, reason, failedWith); err != nil {
			return err
		}
		s.forget(linkID)
		s.log.Warn("link needs re-authorisation", "link_id", linkID, "error", teslaErr)
		return ErrReauthRequired
	case oidc.KindOf(teslaErr) == oidc.KindConfig:
		s.log.Error("OPERATOR ALERT: Tesla rejected our client credentials during refresh; check TESLA_CLIENT_ID/TESLA_CLIENT_SECRET",
			"link_id", linkID, "error", teslaErr)
		return fmt.Errorf("%w: %v", ErrTeslaConfig, teslaErr)
	case oidc.KindOf(teslaErr) == oidc.KindInvalid:
		// Tesla answered, but the answer failed a check (signature, expiry,
		// iat, ...): a provider or configuration fault. The new tokens were
		// not stored; the previous refresh token stays valid at Tesla for 24
		// hours, so the link is kept and a later attempt may recover.
		s.log.Error("Tesla's refresh answer failed verification; the link is kept",
			"link_id", linkID, "check", failedCheck(teslaErr), "error", teslaErr)
		return fmt.Errorf("%w: %w", ErrTeslaInvalidResponse, teslaErr)
	default:
		// Transient (e.g. the key set could not be fetched): the previous
		// refresh token stays valid at Tesla for 24 hours, so a later attempt
		// recovers. The link is left as it is.
		retry := oidc.RetryAfterOf(teslaErr)
		if retry <= 0 {
			retry = 5 * time.Second
		}
		s.log.Warn("refresh failed; will retry on the next request", "link_id", linkID, "error", teslaErr)
		return &UnavailableError{RetryAfter: retry, Err: teslaErr}
	}
}

// failedCheck names the check a provider's answer failed: the innermost
// cause of the oidc error (e.g. "id token expired"), never a token.
func failedCheck(err error) string {
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// unknownLifetime is assumed for access tokens whose lifetime the provider
// does not state (no expires_in, not a JWT): long enough not to refresh on
// every request, short enough to be safe.
const unknownLifetime = time.Hour

func (s *Service) expiry(tok *oidc.Tokens) time.Time {
	if tok.Expiry.IsZero() {
		return s.now().Add(unknownLifetime)
	}
	return tok.Expiry
}

// RefreshResult names the result of a refresh call to Tesla for metrics:
// ok, reauth (the owner must link again), config (our client credentials),
// transient (5xx, 429, network, timeout), invalid (an answer that failed
// validation) or error.
func RefreshResult(err error) string {
	if err == nil {
		return "ok"
	}
	switch oidc.KindOf(err) {
	case oidc.KindReauth:
		return "reauth"
	case oidc.KindConfig:
		return "config"
	case oidc.KindTransient:
		return "transient"
	case oidc.KindInvalid:
		return "invalid"
	}
	return "error"
}
