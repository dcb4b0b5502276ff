package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is a cached JWKS implementing gooidc.KeySet. An unknown `kid` triggers a refetch:
// each kid at most once per jwksMinInterval, so a key the provider publishes just after
// someone sent garbage is still picked up, and all kids together at most jwksBurst times
// plus one per jwksMinInterval, so a flood of made-up kids cannot make us hammer the
// provider. Concurrent callers share one fetch, and a failed first load is not retried for
// jwksFailBackoff.
type keySet struct {
	c *Client

	mu         sync.Mutex
	keys       []jose.JSONWebKey
	loaded     bool
	tried      map[string]time.Time // unknown kids that caused a refetch, and when
	budget     float64              // refetches left (refills one per jwksMinInterval)
	budgetAt   time.Time            // when budget was last refilled
	lastErr    error                // error of the last failed fetch
	lastFailAt time.Time            // when it failed
	inflight   chan struct{}        // closed when the running fetch ends
}

// jwksBurst is how many unknown-kid refetches may happen back to back; afterwards one
// more is allowed per jwksMinInterval.
const jwksBurst = 4

// maxTriedKids bounds the memory of kids that already caused a refetch.
const maxTriedKids = 256

// jwksFailBackoff is how long a failed JWKS load is remembered before the next attempt.
const jwksFailBackoff = 2 * time.Second

var errNoKey = errors.New("no matching signing key")

// VerifySignature verifies a JWS signed with one of the accepted algorithms (RS256 for
// Tesla; see idTokenAlgs) with a key from the provider's JWKS and returns the payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	algs := []jose.SignatureAlgorithm{jose.RS256}
	if s := k.c.st.Load(); s != nil && len(s.sigAlgs) > 0 {
		algs = s.sigAlgs
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("parse jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jws must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	keys, _, err := k.get(ctx)
	if err != nil {
		return nil, err
	}
	payload, known, err := verifyWith(jws, keys, kid)
	if known || err == nil {
		return payload, err
	}
	// Unknown kid: maybe the provider rotated its keys.
	keys, fetched, err := k.refetchFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	if !fetched {
		return nil, errNoKey
	}
	payload, _, err = verifyWith(jws, keys, kid)
	return payload, err
}

// refetchFor reloads the keys for a token whose kid none of them has, unless this kid
// already caused a refetch within jwksMinInterval or the refetch budget is used up.
// A fetch already running is joined; if it did not bring the kid, the kid may still
// have a fetch of its own. fetched reports whether the keys returned are newer than
// the ones the caller tried.
func (k *keySet) refetchFor(ctx context.Context, kid string) (keys []jose.JSONWebKey, fetched bool, err error) {
	joined := false
	for range 2 {
		k.mu.Lock()
		if ch := k.inflight; ch != nil {
			k.mu.Unlock()
			if err := waitCh(ctx, ch); err != nil {
				return nil, false, err
			}
			k.mu.Lock()
			keys, loaded, lastErr := k.keys, k.loaded, k.lastErr
			k.mu.Unlock()
			if !loaded {
				return nil, false, lastErr
			}
			joined = true
			if hasKid(keys, kid) {
				return keys, true, nil
			}
			continue
		}
		now := k.c.clock()
		if t, ok := k.tried[kid]; (ok && now.Sub(t) < k.c.jwksMinInterval) || !k.takeBudget(now) {
			keys := k.keys
			k.mu.Unlock()
			return keys, joined, nil
		}
		k.remember(kid, now)
		return k.fetchLocked(ctx)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, joined, nil
}

// takeBudget spends one unknown-kid refetch if any is left. k.mu is held.
func (k *keySet) takeBudget(now time.Time) bool {
	if k.budgetAt.IsZero() {
		k.budget, k.budgetAt = jwksBurst, now
	}
	if elapsed := now.Sub(k.budgetAt); elapsed > 0 && k.c.jwksMinInterval > 0 {
		k.budget = min(jwksBurst, k.budget+float64(elapsed)/float64(k.c.jwksMinInterval))
		k.budgetAt = now
	}
	if k.budget < 1 {
		return false
	}
	k.budget--
	return true
}

// remember records that kid caused a refetch, forgetting old entries. k.mu is held.
func (k *keySet) remember(kid string, now time.Time) {
	if k.tried == nil {
		k.tried = make(map[string]time.Time)
	}
	if len(k.tried) >= maxTriedKids {
		for id, t := range k.tried {
			if now.Sub(t) >= k.c.jwksMinInterval {
				delete(k.tried, id)
			}
		}
		if len(k.tried) >= maxTriedKids {
			// Only a flood fills it, and the budget already bounds a flood's fetches.
			clear(k.tried)
		}
	}
	k.tried[kid] = now
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, key := range keys {
		if key.KeyID == kid {
			return true
		}
	}
	return false
}

// verifyWith tries the keys matching kid (all keys when kid is empty). known reports
// whether some key matched kid, so a failure is a bad signature rather than an unknown key.
// A key whose JWK names an `alg` is only used for that algorithm.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool, err error) {
	alg := jws.Signatures[0].Header.Algorithm
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != alg {
			if kid != "" {
				known = true
			}
			continue
		}
		if kid != "" {
			known = true
		}
		if p, verr := jws.Verify(key.Key); verr == nil {
			return p, true, nil
		}
	}
	if known {
		return nil, true, errors.New("bad signature")
	}
	return nil, false, errNoKey
}

// get returns the keys, loading them on first use. fetched reports whether the returned
// keys come from a fetch made (or joined) by this call.
func (k *keySet) get(ctx context.Context) (keys []jose.JSONWebKey, fetched bool, err error) {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		// Join the running fetch.
		k.mu.Unlock()
		if err := waitCh(ctx, ch); err != nil {
			return nil, false, err
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if !k.loaded {
			return nil, false, k.lastErr
		}
		return k.keys, true, nil
	}
	if k.loaded {
		keys := k.keys
		k.mu.Unlock()
		return keys, false, nil
	}
	if k.lastErr != nil && k.c.clock().Sub(k.lastFailAt) < jwksFailBackoff {
		err := k.lastErr
		k.mu.Unlock()
		return nil, false, err
	}
	return k.fetchLocked(ctx)
}

// fetchLocked downloads the keys; it is called with k.mu held and releases it.
func (k *keySet) fetchLocked(ctx context.Context) (keys []jose.JSONWebKey, fetched bool, err error) {
	ch := make(chan struct{})
	k.inflight = ch
	k.mu.Unlock()

	keys, err = k.download(ctx)

	k.mu.Lock()
	if err == nil {
		k.keys, k.loaded, k.lastErr = keys, true, nil
	} else {
		k.lastErr, k.lastFailAt = err, k.c.clock()
	}
	k.inflight = nil
	close(ch)
	k.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	return keys, true, nil
}

// download fetches and parses the JWKS, keeping only public signing keys: RSA (2048 bits
// or more), ECDSA on P-256/P-384/P-521, and Ed25519.
func (k *keySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	s := k.c.st.Load()
	if s == nil {
		return nil, ErrNotReady
	}
	// Detach from the caller's cancellation only within a bound, so one caller giving up
	// does not fail the others waiting on this fetch.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, s.meta.JWKSURI, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.c.http.Do(req)
	if err != nil {
		return nil, transportError("jwks", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, transportError("jwks", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classifyHTTP("jwks", resp.StatusCode, "", resp.Header, k.c.clock())
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, &Error{Kind: KindInvalid, Op: "jwks", Err: fmt.Errorf("decode jwks: %w", err)}
	}
	var keys []jose.JSONWebKey
	for _, rawKey := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(rawKey); err != nil {
			continue // unsupported key types are skipped, not fatal
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if !usableKey(key.Key) {
			continue
		}
		keys = append(keys, key)
	}
	k.c.log.InfoContext(ctx, "oidc jwks fetched", "keys", len(keys))
	return keys, nil
}

// usableKey reports whether k is a public key we verify signatures with.
func usableKey(k any) bool {
	switch pub := k.(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return true
		}
	case ed25519.PublicKey:
		return len(pub) == ed25519.PublicKeySize
	}
	return false
}

func waitCh(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
