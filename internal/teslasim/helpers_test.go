package teslasim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const testRedirect = "http://127.0.0.1:8080/auth/tesla/callback"

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newSim starts a simulator with a fixed clock and the shared test key.
func newSim(t *testing.T, mod ...func(*Config)) *Sim {
	t.Helper()
	cfg := Config{RedirectURIs: []string{testRedirect}, Clock: NewClock(t0), SigningKey: testKey()}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type authParams struct {
	scopes   string
	verifier string
	nonce    string
	state    string
	extra    url.Values
}

func defaultParams() authParams {
	return authParams{
		scopes:   "openid offline_access user_data vehicle_device_data",
		verifier: "verifier-" + strings.Repeat("x", 50),
		nonce:    "nonce-123",
		state:    "state-abc",
	}
}

func (s *Sim) testAuthURL(p authParams) string {
	q := url.Values{
		"client_id": {s.cfg.ClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {p.scopes}, "state": {p.state}, "nonce": {p.nonce},
	}
	if p.verifier != "" {
		q.Set("code_challenge", s256(p.verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, v := range p.extra {
		q[k] = v
	}
	return s.AuthorizeURL() + "?" + q.Encode()
}

// login runs consent and returns the code.
func login(t testing.TB, s *Sim, email string, p authParams, grant []string) string {
	t.Helper()
	loc, err := s.Consent(context.Background(), s.testAuthURL(p), email, grant, true)
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in redirect %s", loc.Redacted())
	}
	return code
}

type tokenResp struct {
	status int
	body   map[string]any
	header http.Header
}

func (r tokenResp) str(k string) string { v, _ := r.body[k].(string); return v }

func postForm(t testing.TB, u string, form url.Values) tokenResp {
	t.Helper()
	res, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return tokenResp{status: res.StatusCode, body: m, header: res.Header}
}

func (s *Sim) codeForm(code string, p authParams) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "client_id": {s.cfg.ClientID}, "client_secret": {s.cfg.ClientSecret},
		"code": {code}, "redirect_uri": {testRedirect}, "audience": {s.RegionBaseURL("na")},
		"code_verifier": {p.verifier},
	}
}

func exchange(t testing.TB, s *Sim, code string, p authParams) tokenResp {
	t.Helper()
	return postForm(t, s.TokenURL(), s.codeForm(code, p))
}

// linked logs email in and exchanges the code; it fails the test on error.
func linked(t testing.TB, s *Sim, email string, grant ...string) tokenResp {
	t.Helper()
	p := defaultParams()
	if grant == nil {
		grant = []string{"user_data", "vehicle_device_data"}
	}
	r := exchange(t, s, login(t, s, email, p, grant), p)
	if r.status != 200 {
		t.Fatalf("code exchange: %d %v", r.status, r.body)
	}
	return r
}

func refresh(t testing.TB, s *Sim, rt string) tokenResp {
	t.Helper()
	return postForm(t, s.TokenURL(), url.Values{
		"grant_type": {"refresh_token"}, "client_id": {s.cfg.ClientID}, "refresh_token": {rt},
	})
}

func fleetGet(t testing.TB, s *Sim, region, path, at string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.RegionBaseURL(region)+path, nil)
	if at != "" {
		req.Header.Set("Authorization", "Bearer "+at)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// claims decodes a JWT's header and payload without verifying.
func claims(t testing.TB, tok string) (hdr, body map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&hdr, &body} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, body
}
