package oidc

import (
	"context"
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
// at most once per jwksMinInterval; concurrent callers share one fetch.
type keySet struct {
	c *Client

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	loaded      bool
	lastRefetch time.Time     // last refetch caused by an unknown kid
	inflight    chan struct{} // closed when the running fetch ends
	fetches     int           // number of fetches started (for tests and logs)
}

var errNoKey = errors.New("no matching signing key")

// VerifySignature verifies an RS256 JWS with a key from the provider's JWKS and returns the payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("parse jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jws must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	keys, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	payload, known, err := verifyWith(jws, keys, kid)
	if known || err == nil {
		return payload, err
	}
	// Unknown kid: maybe the provider rotated its keys.
	keys, refetched, err := k.refetch(ctx)
	if err != nil {
		return nil, err
	}
	if !refetched {
		return nil, errNoKey
	}
	payload, _, err = verifyWith(jws, keys, kid)
	return payload, err
}

// verifyWith tries the keys matching kid (all keys when kid is empty). known reports
// whether some key matched kid, so a failure is a bad signature rather than an unknown key.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) (payload []byte, known bool, err error) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
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

// current returns the cached keys, loading them on first use.
func (k *keySet) current(ctx context.Context) ([]jose.JSONWebKey, error) {
	for {
		k.mu.Lock()
		if k.loaded {
			keys := k.keys
			k.mu.Unlock()
			return keys, nil
		}
		if ch := k.inflight; ch != nil {
			k.mu.Unlock()
			if err := waitCh(ctx, ch); err != nil {
				return nil, err
			}
			continue
		}
		k.mu.Unlock()
		if _, _, err := k.fetch(ctx, false); err != nil {
			return nil, err
		}
	}
}

// refetch reloads the keys if the rate limit allows. refetched is false when it did not.
func (k *keySet) refetch(ctx context.Context) ([]jose.JSONWebKey, bool, error) {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		// Someone is fetching right now: share its result.
		k.mu.Unlock()
		if err := waitCh(ctx, ch); err != nil {
			return nil, false, err
		}
		k.mu.Lock()
		keys := k.keys
		k.mu.Unlock()
		return keys, true, nil
	}
	now := k.c.clock()
	if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.c.jwksMinInterval {
		k.mu.Unlock()
		return nil, false, nil
	}
	k.mu.Unlock()
	keys, started, err := k.fetch(ctx, true)
	if err != nil {
		return nil, false, err
	}
	if !started {
		// Lost the race to another fetch, which has finished; use its keys.
		k.mu.Lock()
		keys = k.keys
		k.mu.Unlock()
	}
	return keys, true, nil
}

// fetch downloads the JWKS unless another fetch is running (then started=false after
// waiting for it).
func (k *keySet) fetch(ctx context.Context, isRefetch bool) (keys []jose.JSONWebKey, started bool, err error) {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		if err := waitCh(ctx, ch); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if isRefetch {
		now := k.c.clock()
		if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.c.jwksMinInterval {
			keys := k.keys
			k.mu.Unlock()
			return keys, false, nil
		}
		k.lastRefetch = now
	}
	ch := make(chan struct{})
	k.inflight = ch
	k.fetches++
	k.mu.Unlock()

	keys, err = k.download(ctx)

	k.mu.Lock()
	if err == nil {
		k.keys, k.loaded = keys, true
	}
	k.inflight = nil
	close(ch)
	k.mu.Unlock()
	return keys, true, err
}

// download fetches and parses the JWKS, keeping only RSA signing keys.
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
		pub, ok := key.Key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < 2048 {
			continue
		}
		keys = append(keys, key)
	}
	k.c.log.InfoContext(ctx, "oidc jwks fetched", "keys", len(keys))
	return keys, nil
}

// fetchCount returns how many JWKS downloads were started.
func (k *keySet) fetchCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}

func waitCh(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
