package oidc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func accessJWT(t *testing.T, scp any, ou string) string {
	t.Helper()
	m := map[string]any{
		"iss": "https://auth.example.test/oauth2/v3/nts", "sub": "owner-sub-1",
		"aud": []string{"https://fleet-api.prd.na.vn.cloud.tesla.com"},
		"exp": testNow.Add(8 * time.Hour).Unix(), "iat": testNow.Unix(),
	}
	if scp != nil {
		m["scp"] = scp
	}
	if ou != "" {
		m["ou_code"] = ou
	}
	return sign(t, signingKey{"k1", rsaKeys()[0]}, m)
}

func TestExchangeSendsTeslaParameters(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	at := accessJWT(t, []string{"openid", "offline_access", "vehicle_device_data"}, "EU")
	id := sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(nil))
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		f := formOf(t, r)
		want := map[string]string{
			"grant_type":    "authorization_code",
			"code":          "NA_code-1",
			"code_verifier": testVerifier,
			"redirect_uri":  "https://link.example.test/auth/tesla/callback",
			"client_id":     testClientID,
			"client_secret": testSecret,
			"audience":      "https://fleet-api.prd.eu.vn.cloud.tesla.com",
		}
		for k, v := range want {
			if f.Get(k) != v {
				t.Errorf("token form %s = %q, want %q", k, f.Get(k), v)
			}
		}
		writeJSON(w, 200, map[string]any{"access_token": at, "refresh_token": "EU_rt-1", "id_token": id, "expires_in": 28800, "token_type": "Bearer"})
	})
	c, _, _ := newClient(t, p, nil)
	tok, err := c.Exchange(context.Background(), "NA_code-1", testVerifier, "https://fleet-api.prd.eu.vn.cloud.tesla.com")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != at || tok.RefreshToken != "EU_rt-1" || tok.IDToken != id {
		t.Errorf("tokens = %+v", tok)
	}
	if strings.Join(tok.Scopes, " ") != "openid offline_access vehicle_device_data" {
		t.Errorf("scopes (from scp) = %v", tok.Scopes)
	}
	if tok.Region != "eu" {
		t.Errorf("region = %q", tok.Region)
	}
	if tok.Expiry.IsZero() {
		t.Error("no expiry")
	}
	if _, err := c.VerifyIDToken(context.Background(), tok.IDToken, "nonce-abc"); err != nil {
		t.Errorf("verify exchanged id token: %v", err)
	}
}

func TestExchangeDefaultAudienceAndScopeField(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var gotAud atomic.Value
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		gotAud.Store(formOf(t, r).Get("audience"))
		// scope in the response wins over scp; an opaque access token has no region.
		writeJSON(w, 200, map[string]any{"access_token": "opaque", "expires_in": "3600", "scope": "openid user_data", "token_type": "bearer"})
	})
	c, _, _ := newClient(t, p, func(cfg *Config) { cfg.Audience = "https://aud.example" })
	tok, err := c.Exchange(context.Background(), "code", testVerifier, "")
	if err != nil {
		t.Fatal(err)
	}
	if gotAud.Load() != "https://aud.example" {
		t.Errorf("audience = %v", gotAud.Load())
	}
	if strings.Join(tok.Scopes, " ") != "openid user_data" || tok.Region != "" {
		t.Errorf("tokens = %+v", tok)
	}
}

func TestExchangeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		kind   Kind
	}{
		{"invalid_auth_code", 400, `{"error":"invalid_auth_code"}`, KindInvalid},
		{"invalid_redirect_url", 400, `{"error":"invalid_redirect_url"}`, KindConfig},
		{"unauthorized_client", 401, `{"error":"unauthorized_client"}`, KindConfig},
		{"5xx", 502, `bad gateway`, KindTransient},
		{"no access token", 200, `{"token_type":"bearer"}`, KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			var hits atomic.Int32
			p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c, _, _ := newClient(t, p, nil)
			_, err := c.Exchange(context.Background(), "NA_secretcode", testVerifier, "")
			if KindOf(err) != tc.kind {
				t.Fatalf("kind = %v, want %v (err %v)", KindOf(err), tc.kind, err)
			}
			if hits.Load() != 1 {
				t.Errorf("exchange attempted %d times; codes are single use", hits.Load())
			}
			if strings.Contains(err.Error(), "NA_secretcode") || strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks secrets: %v", err)
			}
		})
	}
}

// refreshProvider answers the token endpoint with the given sequence of responses.
type reply struct {
	status int
	header map[string]string
	body   string
}

func tokenSequence(t *testing.T, p *provider, replies ...reply) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(replies) {
			i = len(replies) - 1
		}
		f := formOf(t, r)
		if f.Get("grant_type") != "refresh_token" || f.Get("client_id") != testClientID || f.Get("refresh_token") != "NA_rt-old" {
			t.Errorf("refresh form = %v", f)
		}
		for k, v := range replies[i].header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(replies[i].status)
		_, _ = w.Write([]byte(replies[i].body))
	})
	return &n
}

func okRefreshBody(t *testing.T, idMod func(map[string]any)) string {
	at := accessJWT(t, "openid offline_access user_data", "NA")
	m := map[string]any{"access_token": at, "refresh_token": "NA_rt-new", "expires_in": 28800, "token_type": "Bearer"}
	if idMod != nil {
		m["id_token"] = sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(func(c map[string]any) {
			delete(c, "nonce")
			idMod(c)
		}))
	}
	return string(mustJSON(m))
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	loginRequired := reply{401, nil, `{"error":"login_required"}`}
	tests := []struct {
		name     string
		replies  []reply
		prevSub  string
		wantKind Kind // KindUnknown with wantOK
		wantOK   bool
		wantHits int32
		wantWait []time.Duration // exact sleeps when known
	}{
		{name: "ok without id token", replies: []reply{{200, nil, okRefreshBody(t, nil)}}, wantOK: true, wantHits: 1},
		{name: "ok with same iss/sub", replies: []reply{{200, nil, okRefreshBody(t, func(map[string]any) {})}}, prevSub: "owner-sub-1", wantOK: true, wantHits: 1},
		{name: "login_required", replies: []reply{loginRequired}, wantKind: KindReauth, wantHits: 1},
		{name: "invalid_grant", replies: []reply{{400, nil, `{"error":"invalid_grant"}`}}, wantKind: KindReauth, wantHits: 1},
		{name: "unauthorized_client", replies: []reply{{401, nil, `{"error":"unauthorized_client"}`}}, wantKind: KindConfig, wantHits: 1},
		{name: "503 retried then ok", replies: []reply{{503, nil, ``}, {200, nil, okRefreshBody(t, nil)}}, wantOK: true, wantHits: 2},
		{name: "503 exhausts attempts", replies: []reply{{503, nil, `{"error":"server_error"}`}}, wantKind: KindTransient, wantHits: 3},
		{name: "429 honours Retry-After", replies: []reply{{429, map[string]string{"Retry-After": "7"}, ``}, {200, nil, okRefreshBody(t, nil)}}, wantOK: true, wantHits: 2, wantWait: []time.Duration{7 * time.Second}},
		{name: "5xx then login_required stops", replies: []reply{{500, nil, ``}, loginRequired}, wantKind: KindReauth, wantHits: 2},
		{name: "sub changed", replies: []reply{{200, nil, okRefreshBody(t, func(c map[string]any) { c["sub"] = "someone-else" })}}, prevSub: "owner-sub-1", wantKind: KindInvalid, wantHits: 1},
		{name: "iss changed", replies: []reply{{200, nil, okRefreshBody(t, func(c map[string]any) { c["iss"] = "https://other.example/nts" })}}, prevSub: "owner-sub-1", wantKind: KindInvalid, wantHits: 1},
		{name: "refreshed id token bad aud", replies: []reply{{200, nil, okRefreshBody(t, func(c map[string]any) { c["aud"] = "x" })}}, prevSub: "owner-sub-1", wantKind: KindInvalid, wantHits: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			hits := tokenSequence(t, p, tc.replies...)
			c, _, sl := newClient(t, p, func(cfg *Config) {
				if tc.name == "iss changed" {
					cfg.Issuers = []string{testIDIssuer, "https://other.example/nts"}
				}
			})
			tok, err := c.Refresh(context.Background(), "NA_rt-old", testIDIssuer, tc.prevSub)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if tok.RefreshToken != "NA_rt-new" || tok.Region != "na" || strings.Join(tok.Scopes, ",") != "openid,offline_access,user_data" {
					t.Errorf("tokens = %+v", tok)
				}
				if !tok.Expiry.Equal(testNow.Add(8 * time.Hour)) {
					t.Errorf("expiry = %v", tok.Expiry)
				}
			} else {
				if err == nil {
					t.Fatal("Refresh succeeded")
				}
				if KindOf(err) != tc.wantKind {
					t.Errorf("kind = %v, want %v (%v)", KindOf(err), tc.wantKind, err)
				}
				for _, s := range []string{"NA_rt-old", "NA_rt-new", testSecret} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks %q: %v", s, err)
					}
				}
			}
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("token endpoint hits = %d, want %d", got, tc.wantHits)
			}
			if tc.wantWait != nil {
				got := sl.all()
				if len(got) != len(tc.wantWait) || got[0] != tc.wantWait[0] {
					t.Errorf("sleeps = %v, want %v", got, tc.wantWait)
				}
			}
		})
	}
}

func TestRefreshSubChangeIsSubMismatch(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	tokenSequence(t, p, reply{200, nil, okRefreshBody(t, func(c map[string]any) { c["sub"] = "other" })})
	c, _, _ := newClient(t, p, nil)
	_, err := c.Refresh(context.Background(), "NA_rt-old", testIDIssuer, "owner-sub-1")
	if !errors.Is(err, ErrSubMismatch) {
		t.Fatalf("err = %v", err)
	}
}

func TestRefreshRespectsDeadline(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	hits := tokenSequence(t, p, reply{429, map[string]string{"Retry-After": "120"}, ``})
	c, _, sl := newClient(t, p, nil)
	c.clock = time.Now // the deadline is real time
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Refresh(ctx, "NA_rt-old", "", "")
	if KindOf(err) != KindTransient || RetryAfterOf(err) != 120*time.Second {
		t.Fatalf("err = %v, kind %v, retry-after %v", err, KindOf(err), RetryAfterOf(err))
	}
	if hits.Load() != 1 || len(sl.all()) != 0 {
		t.Errorf("retried past the deadline: hits %d, sleeps %v", hits.Load(), sl.all())
	}
}

func TestRefreshNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var n atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Drop the connection without an answer.
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("no hijacker")
				return
			}
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(okRefreshBody(t, nil)))
	})
	c, _, _ := newClient(t, p, nil)
	if _, err := c.Refresh(context.Background(), "NA_rt-old", "", ""); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if n.Load() != 2 {
		t.Errorf("hits = %d", n.Load())
	}
}

func TestRefreshFormShape(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var secret atomic.Value
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		secret.Store(formOf(t, r).Get("client_secret"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(okRefreshBody(t, nil)))
	})
	c, _, _ := newClient(t, p, nil)
	if _, err := c.Refresh(context.Background(), "NA_rt-old", "", ""); err != nil {
		t.Fatal(err)
	}
	// A non-Tesla provider (the test server) gets client_secret, which confidential
	// clients of standard providers need; Tesla's own hosts get exactly Tesla's shape.
	if secret.Load() != testSecret {
		t.Errorf("client_secret = %q", secret.Load())
	}
	if New(Config{DiscoveryURL: DefaultDiscoveryURL}).IsTesla() != true {
		t.Error("tesla discovery URL not recognised")
	}
}

func TestErrorTextNeverHasTokens(t *testing.T) {
	t.Parallel()
	e := &Error{Kind: KindReauth, Op: "refresh", Status: 401, Code: "login_required token=abc def", RetryAfter: time.Second, Err: errors.New("x")}
	if got := e.Error(); strings.Contains(got, "abc") {
		t.Errorf("unsanitised code in %q", got)
	}
	if e.Unwrap() == nil {
		t.Error("no Unwrap")
	}
}
