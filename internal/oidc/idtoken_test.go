package oidc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyIDToken(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	mustDiscover(t, c)
	k1 := signingKey{kid: "k1", priv: rsaKeys()[0]}
	forged := signingKey{kid: "k1", priv: rsaKeys()[1]}

	tests := []struct {
		name    string
		raw     string
		nonce   string
		wantErr bool
	}{
		{"good", sign(t, k1, idClaims(nil)), "nonce-abc", false},
		{"wrong iss", sign(t, k1, idClaims(func(m map[string]any) { m["iss"] = "https://evil.example" })), "nonce-abc", true},
		{"discovery issuer is not an ID token issuer", sign(t, k1, idClaims(func(m map[string]any) { m["iss"] = "https://auth.example.test/oauth2/v3" })), "nonce-abc", true},
		{"wrong aud", sign(t, k1, idClaims(func(m map[string]any) { m["aud"] = "someone-else" })), "nonce-abc", true},
		{"missing aud", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "aud") })), "nonce-abc", true},
		{"aud as string ok", sign(t, k1, idClaims(func(m map[string]any) { m["aud"] = testClientID })), "nonce-abc", false},
		{"multi aud with foreign azp", sign(t, k1, idClaims(func(m map[string]any) {
			m["aud"] = []string{testClientID, "other"}
			m["azp"] = "other"
		})), "nonce-abc", true},
		{"missing sub", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "sub") })), "nonce-abc", true},
		{"empty sub", sign(t, k1, idClaims(func(m map[string]any) { m["sub"] = "" })), "nonce-abc", true},
		{"missing iat", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "iat") })), "nonce-abc", true},
		{"iat far in future", sign(t, k1, idClaims(func(m map[string]any) { m["iat"] = testNow.Add(time.Hour).Unix() })), "nonce-abc", true},
		{"iat within skew ok", sign(t, k1, idClaims(func(m map[string]any) { m["iat"] = testNow.Add(2 * time.Minute).Unix() })), "nonce-abc", false},
		{"expired", sign(t, k1, idClaims(func(m map[string]any) { m["exp"] = testNow.Add(-time.Second).Unix() })), "nonce-abc", true},
		{"missing exp", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "exp") })), "nonce-abc", true},
		{"bad signature", sign(t, forged, idClaims(nil)), "nonce-abc", true},
		{"tampered payload", tamper(sign(t, k1, idClaims(nil))), "nonce-abc", true},
		{"alg none", unsignedJWT(t, idClaims(nil)), "nonce-abc", true},
		{"wrong nonce", sign(t, k1, idClaims(nil)), "nonce-xyz", true},
		{"nonce prefix", sign(t, k1, idClaims(nil)), "nonce-ab", true},
		{"empty expected nonce vs empty claim", sign(t, k1, idClaims(func(m map[string]any) { m["nonce"] = "" })), "", true},
		{"empty expected nonce vs missing claim", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "nonce") })), "", true},
		{"missing nonce claim", sign(t, k1, idClaims(func(m map[string]any) { delete(m, "nonce") })), "nonce-abc", true},
		{"garbage", "not.a.jwt", "nonce-abc", true},
		{"empty", "", "nonce-abc", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.VerifyIDToken(context.Background(), tc.raw, tc.nonce)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted a bad token: %+v", got)
				}
				if KindOf(err) != KindInvalid {
					t.Errorf("kind = %v, want KindInvalid (err %v)", KindOf(err), err)
				}
				if tc.raw != "" && strings.Contains(err.Error(), tc.raw) {
					t.Errorf("error text contains the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyIDToken: %v", err)
			}
			if got.Subject != "owner-sub-1" || got.Issuer != testIDIssuer || got.Nonce != "nonce-abc" ||
				!got.IssuedAt.Equal(time.Unix(got.IssuedAt.Unix(), 0)) || got.Expiry.IsZero() {
				t.Errorf("claims = %+v", got)
			}
		})
	}
}

// tamper flips the payload's subject without re-signing.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	claims := idClaims(func(m map[string]any) { m["sub"] = "attacker" })
	b := mustJSON(claims)
	parts[1] = b64(b)
	return strings.Join(parts, ".")
}

func TestVerifyIDTokenIssuerErrorIsIssuerMismatch(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	mustDiscover(t, c)
	raw := sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(func(m map[string]any) { m["iss"] = "https://evil.example" }))
	_, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc")
	if !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
}

func TestKeyRotationAccepted(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	mustDiscover(t, c)
	k1 := signingKey{"k1", rsaKeys()[0]}
	k2 := signingKey{"k2", rsaKeys()[1]}
	if _, err := c.VerifyIDToken(context.Background(), sign(t, k1, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	if n := p.jwksHits.Load(); n != 1 {
		t.Fatalf("jwks hits = %d, want 1", n)
	}
	// The provider rotates to k2: a token with the new kid must cause a refetch and pass.
	p.setKeys(k2)
	if _, err := c.VerifyIDToken(context.Background(), sign(t, k2, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("jwks hits = %d, want 2", n)
	}
	// The retired key no longer verifies... but only a refetch would reveal that; a known
	// kid with a bad signature never triggers a refetch.
	forged := signingKey{"k2", rsaKeys()[2]}
	if _, err := c.VerifyIDToken(context.Background(), sign(t, forged, idClaims(nil)), "nonce-abc"); err == nil {
		t.Fatal("forged token with known kid accepted")
	}
	if n := p.jwksHits.Load(); n != 2 {
		t.Fatalf("bad signature caused a refetch: jwks hits = %d", n)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, clk, _ := newClient(t, p, nil)
	mustDiscover(t, c)
	if _, err := c.VerifyIDToken(context.Background(), sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatal(err)
	}
	start := p.jwksHits.Load()
	var wg sync.WaitGroup
	var accepted sync.Map
	for i := range 50 {
		raw := sign(t, signingKey{fmt.Sprintf("unknown-%d", i), rsaKeys()[1]}, idClaims(nil))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc"); err == nil {
				accepted.Store(i, true)
			}
		}()
	}
	wg.Wait()
	accepted.Range(func(k, _ any) bool { t.Errorf("token %v with unknown kid accepted", k); return true })
	if n := p.jwksHits.Load() - start; n > jwksBurst {
		t.Fatalf("jwks fetched %d times for a burst of 50 unknown kids, want ≤ %d", n, jwksBurst)
	}
	// More unknown kids within the interval: the budget is spent, no more fetches.
	for i := range 10 {
		raw := sign(t, signingKey{fmt.Sprintf("again-%d", i), rsaKeys()[1]}, idClaims(nil))
		_, _ = c.VerifyIDToken(context.Background(), raw, "nonce-abc")
	}
	before := p.jwksHits.Load()
	if n := before - start; n != jwksBurst {
		t.Fatalf("60 unknown kids within the interval caused %d fetches, want exactly %d", n, jwksBurst)
	}
	// After the interval one more refetch is allowed, and a real rotation then succeeds.
	clk.Add(16 * time.Second)
	k3 := signingKey{"k3", rsaKeys()[2]}
	p.setKeys(k3)
	if _, err := c.VerifyIDToken(context.Background(), sign(t, k3, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatalf("rotation after interval: %v", err)
	}
	if n := p.jwksHits.Load(); n != before+1 {
		t.Fatalf("jwks hits = %d, want %d", n, before+1)
	}
}

func TestVerifyIDTokenNotReady(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 1000
	c, _, _ := newClient(t, p, nil)
	_, err := c.VerifyIDToken(context.Background(), sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(nil)), "nonce-abc")
	if !errors.Is(err, ErrNotReady) || KindOf(err) != KindTransient {
		t.Fatalf("err = %v (kind %v), want ErrNotReady/KindTransient", err, KindOf(err))
	}
	if c.Ready() {
		t.Fatal("Ready() true without discovery")
	}
}

// A token with an unknown kid (garbage, or a key published a moment later)
// must not block a real key rotation that follows within the refetch
// interval: each new kid may trigger a refetch of its own.
func TestKeyRotationSoonAfterUnknownKid(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, clk, _ := newClient(t, p, nil)
	mustDiscover(t, c)
	k1 := signingKey{"k1", rsaKeys()[0]}
	if _, err := c.VerifyIDToken(context.Background(), sign(t, k1, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	garbage := signingKey{"not-a-key", rsaKeys()[1]}
	if _, err := c.VerifyIDToken(context.Background(), sign(t, garbage, idClaims(nil)), "nonce-abc"); err == nil {
		t.Fatal("token with unknown kid accepted")
	}
	hits := p.jwksHits.Load()
	// The same unknown kid again within the interval: no further fetch.
	_, _ = c.VerifyIDToken(context.Background(), sign(t, garbage, idClaims(nil)), "nonce-abc")
	if n := p.jwksHits.Load(); n != hits {
		t.Fatalf("the same unknown kid refetched within the interval: %d → %d", hits, n)
	}
	clk.Add(5 * time.Second)
	k2 := signingKey{"k2", rsaKeys()[2]}
	p.setKeys(k1, k2)
	if _, err := c.VerifyIDToken(context.Background(), sign(t, k2, idClaims(nil)), "nonce-abc"); err != nil {
		t.Fatalf("rotation 5 s after an unknown kid refused: %v", err)
	}
}
