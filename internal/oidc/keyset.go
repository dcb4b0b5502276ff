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

// keySet is a cached JWKS implementing gooidc.KeySet. An unknown `kid` triggers a refetch,
// at most once per jwksMinInterval; concurrent callers share one fetch, and a failed first
// load is not retried for jwksFailBackoff.
type keySet struct {
	c *Client

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	loaded      bool
	lastRefetch time.Time     // last refetch caused by an unknown kid
	lastErr     error         // error of the last failed fetch
	lastFailAt  time.Time     // when it failed
	inflight    chan struct{} // closed when the running fetch ends
}

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

	keys, _, err := k.get(ctx, false)
	if err != nil {
		return nil, err
	}
	payload, known, err := verifyWith(jws, keys, kid)
	if known || err == nil {
		return payload, err
	}
	// Unknown kid: maybe the provider rotated its keys.
	keys, fetched, err := k.get(ctx, true)
	if err != nil {
		return nil, err
	}
	if !fetched {
		return nil, errNoKey
	}
	payload, _, err = verifyWith(jws, keys, kid)
	return payload, err
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

// get returns the keys, loading them on first use. With refetch it reloads them unless a
// refetch happened within jwksMinInterval. fetched reports whether the returned keys come
// from a fetch made (or joined) by this call.
func (k *keySet) get(ctx context.Context, refetch bool) (keys []jose.JSONWebKey, fetched bool, err error) {
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
	now := k.c.clock()
	switch {
	case !k.loaded:
		if k.lastErr != nil && now.Sub(k.lastFailAt) < jwksFailBackoff {
			err := k.lastErr
			k.mu.Unlock()
			return nil, false, err
		}
	case !refetch:
		keys := k.keys
		k.mu.Unlock()
		return keys, false, nil
	default:
		if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.c.jwksMinInterval {
			keys := k.keys
			k.mu.Unlock()
			return keys, false, nil
		}
		k.lastRefetch = now
	}
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
