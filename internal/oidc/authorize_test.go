package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
)

const testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	raw, err := c.AuthCodeURL(context.Background(), AuthRequest{
		State: "state-1", Nonce: "nonce-1", Verifier: testVerifier,
		Scopes: []string{"openid", "offline_access", "user_data"}, Locale: "de-DE", PromptMissingScopes: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != p.url("/oauth2/v3/authorize") {
		t.Errorf("endpoint = %q", got)
	}
	sum := sha256.Sum256([]byte(testVerifier))
	want := map[string]string{
		"response_type":         "code",
		"client_id":             testClientID,
		"redirect_uri":          "https://link.example.test/auth/tesla/callback",
		"scope":                 "openid offline_access user_data",
		"state":                 "state-1",
		"nonce":                 "nonce-1",
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
		"prompt_missing_scopes": "true",
		"locale":                "de-DE",
	}
	q := u.Query()
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") || q.Has("client_secret") || strings.Contains(raw, testSecret) {
		t.Error("authorize URL leaks the verifier or secret")
	}

	// Without optional parts.
	raw, err = c.AuthCodeURL(context.Background(), AuthRequest{State: "s", Nonce: "n", Verifier: testVerifier, Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(raw)
	if u.Query().Has("prompt_missing_scopes") || u.Query().Has("locale") {
		t.Errorf("optional params sent: %s", raw)
	}
}

func TestAuthCodeURLRejectsBadInput(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	good := AuthRequest{State: "s", Nonce: "n", Verifier: testVerifier, Scopes: []string{"openid"}}
	for name, mod := range map[string]func(*AuthRequest){
		"no state":       func(r *AuthRequest) { r.State = "" },
		"no nonce":       func(r *AuthRequest) { r.Nonce = "" },
		"short verifier": func(r *AuthRequest) { r.Verifier = "abc" },
		"bad verifier":   func(r *AuthRequest) { r.Verifier = strings.Repeat("a", 42) + "!" },
		"no scopes":      func(r *AuthRequest) { r.Scopes = nil },
	} {
		r := good
		mod(&r)
		if _, err := c.AuthCodeURL(context.Background(), r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCheckCallbackIssuer(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	if err := c.CheckCallbackIssuer(url.Values{}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before discovery: %v", err)
	}
	mustDiscover(t, c)
	cb := p.url("/oauth2/v3")
	disc := "https://auth.example.test/oauth2/v3"
	tests := []struct {
		name string
		q    url.Values
		ok   bool
	}{
		{"none", url.Values{"code": {"x"}, "state": {"s"}}, true},
		{"tesla issuer ok", url.Values{"issuer": {cb}}, true},
		{"tesla issuer wrong", url.Values{"issuer": {"https://evil.example/oauth2/v3"}}, false},
		{"tesla issuer empty", url.Values{"issuer": {""}}, false},
		{"tesla issuer twice", url.Values{"issuer": {cb, cb}}, false},
		{"rfc9207 iss ok", url.Values{"iss": {disc}}, true},
		{"rfc9207 iss wrong", url.Values{"iss": {cb}}, false},
		{"both ok", url.Values{"issuer": {cb}, "iss": {disc}}, true},
		{"both, iss wrong", url.Values{"issuer": {cb}, "iss": {"https://evil.example"}}, false},
	}
	for _, tc := range tests {
		err := c.CheckCallbackIssuer(tc.q)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && (!errors.Is(err, ErrIssuerMismatch) || KindOf(err) != KindInvalid) {
			t.Errorf("%s: err = %v, want ErrIssuerMismatch", tc.name, err)
		}
	}
}

func TestRevokeConsentURL(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	back := "https://link.example.test/?a=1&b=2"
	if got, want := c.RevokeConsentURL(back), "https://auth.tesla.com/user/revoke/consent?revoke_client_id=client-123&back_url="+url.QueryEscape(back); got != want {
		t.Errorf("before discovery: %q, want %q", got, want)
	}
	mustDiscover(t, c)
	got := c.RevokeConsentURL(back)
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host != p.srv.URL || u.Path != "/user/revoke/consent" {
		t.Errorf("url = %q", got)
	}
	if u.Query().Get("revoke_client_id") != testClientID || u.Query().Get("back_url") != back {
		t.Errorf("query = %v", u.Query())
	}
	if !strings.Contains(got, "?revoke_client_id=") {
		t.Errorf("revoke_client_id not first: %q", got)
	}
}
