package teslasim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// verifyID verifies an ID token the way a relying party would (go-oidc plus
// the nonce/iat/sub checks go-oidc leaves out) and returns the first problem.
func verifyID(t *testing.T, s *Sim, raw, nonce string) error {
	t.Helper()
	ctx := gooidc.ClientContext(context.Background(), http.DefaultClient)
	v := gooidc.NewVerifier(s.IDTokenIssuer(), gooidc.NewRemoteKeySet(ctx, s.URL()+PathJWKS),
		&gooidc.Config{ClientID: s.cfg.ClientID, Now: s.clock.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return err
	}
	var c map[string]any
	_ = idt.Claims(&c)
	switch {
	case idt.Nonce != nonce:
		return errors.New("nonce mismatch")
	case c["iat"] == nil:
		return errors.New("missing iat")
	case idt.Subject == "":
		return errors.New("missing sub")
	}
	return nil
}

func TestIDTokenFaults(t *testing.T) {
	t.Parallel()
	checks := map[Fault]func(hdr, c map[string]any, jwks string) bool{
		FaultIDTokenBadSignature:    func(h, c map[string]any, _ string) bool { return h["alg"] == "RS256" },
		FaultIDTokenUnknownKID:      func(h, c map[string]any, jwks string) bool { return !strings.Contains(jwks, h["kid"].(string)) },
		FaultIDTokenAlgNone:         func(h, c map[string]any, _ string) bool { return h["alg"] == "none" },
		FaultIDTokenWrongIssuer:     func(h, c map[string]any, _ string) bool { return c["iss"] != DefaultIssuer },
		FaultIDTokenWrongAudience:   func(h, c map[string]any, _ string) bool { return c["aud"] != DefaultClientID && c["aud"] != nil },
		FaultIDTokenMissingAudience: func(h, c map[string]any, _ string) bool { return c["aud"] == nil },
		FaultIDTokenWrongNonce:      func(h, c map[string]any, _ string) bool { return c["nonce"] != nil && c["nonce"] != "nonce-123" },
		FaultIDTokenMissingNonce:    func(h, c map[string]any, _ string) bool { return c["nonce"] == nil },
		FaultIDTokenMissingSub:      func(h, c map[string]any, _ string) bool { return c["sub"] == nil },
		FaultIDTokenMissingIAT:      func(h, c map[string]any, _ string) bool { return c["iat"] == nil },
		FaultIDTokenExpired:         func(h, c map[string]any, _ string) bool { return c["exp"].(float64) < float64(t0.Unix()) },
	}
	s := newSim(t)
	res, err := http.Get(s.URL() + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, f := range idTokenFaults {
		check := checks[f]
		if check == nil {
			t.Fatalf("no check for %s", f)
		}
		// Code grant.
		s.Inject(f, FaultOptions{Count: 1})
		r := linked(t, s, "rae@example.com")
		h, c := claims(t, r.str("id_token"))
		if !check(h, c, string(jb)) {
			t.Errorf("%s (code): header %v claims %v", f, h, c)
		}
		if verifyID(t, s, r.str("id_token"), "nonce-123") == nil {
			t.Errorf("%s (code): relying party accepted the ID token", f)
		}
		// Count 1 used up: the next one is clean.
		r2 := linked(t, s, "rae@example.com")
		if err := verifyID(t, s, r2.str("id_token"), "nonce-123"); err != nil {
			t.Errorf("%s: fault outlived its count: %v", f, err)
		}
		// Refresh grant.
		s.Inject(f, FaultOptions{})
		rr := refresh(t, s, r2.str("refresh_token"))
		h, c = claims(t, rr.str("id_token"))
		if !check(h, c, string(jb)) {
			t.Errorf("%s (refresh): header %v claims %v", f, h, c)
		}
		s.ClearFaults()
	}
}

func TestTokenEndpointFaults(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "sam@example.com")
	rt := a.str("refresh_token")

	s.Inject(FaultRefreshLoginRequired, FaultOptions{Count: 1})
	if r := refresh(t, s, rt); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("login_required fault: %d %v", r.status, r.body)
	}
	s.Inject(FaultUnauthorizedClient, FaultOptions{Count: 1})
	if r := refresh(t, s, rt); r.status != 401 || r.str("error") != "unauthorized_client" {
		t.Errorf("unauthorized_client fault: %d %v", r.status, r.body)
	}
	for _, c := range []struct {
		f      Fault
		status int
	}{{FaultHTTP500, 500}, {FaultHTTP502, 502}, {FaultHTTP503, 503}, {FaultHTTP429, 429}} {
		s.Inject(c.f, FaultOptions{Count: 2, RetryAfter: 3 * time.Second})
		for i := range 2 {
			if r := refresh(t, s, rt); r.status != c.status {
				t.Errorf("%s #%d: %d", c.f, i, r.status)
			} else if c.f == FaultHTTP429 && r.header.Get("Retry-After") != "3" {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
		}
	}
	// The faults did not consume the refresh token.
	r := refresh(t, s, rt)
	if r.status != 200 {
		t.Fatalf("after faults: %d %v", r.status, r.body)
	}
	if got := s.Calls("token.refresh_token"); got != 11 {
		t.Errorf("refresh calls = %d, want 11 (faulted ones count)", got)
	}
	// 429 default Retry-After is 1s.
	s.Inject(FaultHTTP429, FaultOptions{Count: 1})
	if r := refresh(t, s, r.str("refresh_token")); r.header.Get("Retry-After") != "1" {
		t.Errorf("default Retry-After = %q", r.header.Get("Retry-After"))
	}
	// Until cleared.
	s.Inject(FaultHTTP503, FaultOptions{})
	for range 3 {
		if r := refresh(t, s, "x"); r.status != 503 {
			t.Errorf("until cleared: %d", r.status)
		}
	}
	s.ClearFaults()
	if r := refresh(t, s, "x"); r.status != 401 {
		t.Errorf("after clear: %d", r.status)
	}
}

func TestEndpointOptionAndLatency(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "tia@example.com")
	s.Inject(FaultHTTP503, FaultOptions{Count: 1, Endpoint: "users.me"})
	if st, _ := fleetGet(t, s, "na", "/api/1/users/region", a.str("access_token")); st != 200 {
		t.Errorf("other endpoint affected: %d", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", a.str("access_token")); st != 503 {
		t.Errorf("users.me 503: %d", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", a.str("access_token")); st != 200 {
		t.Errorf("users.me after: %d", st)
	}
	s.Inject(FaultLatency, FaultOptions{Count: 1, Latency: 150 * time.Millisecond})
	start := time.Now()
	r := refresh(t, s, a.str("refresh_token"))
	if el := time.Since(start); el < 150*time.Millisecond || r.status != 200 {
		t.Errorf("latency: %v status %d", el, r.status)
	}
	s.Inject(FaultHTTP500, FaultOptions{Count: 1, Endpoint: "discovery"})
	res, err := http.Get(s.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 500 {
		t.Errorf("discovery 500: %d", res.StatusCode)
	}
}

func TestUserinfoSubMismatch(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "uma@example.com")
	get := func() map[string]any {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+PathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+a.str("access_token"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return m
	}
	s.Inject(FaultUserinfoSubMismatch, FaultOptions{Count: 1})
	if m := get(); m["sub"] == s.OwnerSub("uma@example.com") || m["sub"] == "" {
		t.Errorf("mismatch fault: %v", m)
	}
	if m := get(); m["sub"] != s.OwnerSub("uma@example.com") {
		t.Errorf("after: %v", m)
	}
	if s.Calls("userinfo") != 2 {
		t.Errorf("userinfo calls %d", s.Calls("userinfo"))
	}
}

func TestDropAfterRefresh(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "val@example.com")
	n := len(s.Secrets())
	s.Inject(FaultDropAfterRefresh, FaultOptions{Count: 1})
	res, err := http.PostForm(s.TokenURL(), map[string][]string{
		"grant_type": {"refresh_token"}, "client_id": {s.cfg.ClientID}, "refresh_token": {a.str("refresh_token")},
	})
	if err == nil {
		res.Body.Close()
		t.Fatalf("got an answer: %d", res.StatusCode)
	}
	if len(s.Secrets()) != n+3 {
		t.Errorf("refresh not applied: %d new secrets", len(s.Secrets())-n)
	}
	// The old access token died with the applied refresh...
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", a.str("access_token")); st != 401 {
		t.Errorf("old access token: %d", st)
	}
	// ...and the used refresh token still works within 24 hours (recovery).
	if r := refresh(t, s, a.str("refresh_token")); r.status != 200 {
		t.Errorf("recovery: %d %v", r.status, r.body)
	}
	// In-process (no Hijacker) the handler aborts too.
	s.Inject(FaultDropAfterRefresh, FaultOptions{Count: 1})
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recover = %v", v)
			}
		}()
		b := linked(t, s, "val@example.com")
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader("grant_type=refresh_token&client_id="+s.cfg.ClientID+"&refresh_token="+b.str("refresh_token")))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.serveInProcess(req)
	}()
}
