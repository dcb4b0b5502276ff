package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Test fixtures: an in-process OpenID provider with Tesla's quirks (discovery issuer differs
// from its URL and from the ID token issuer), signing RS256 with go-jose.

const (
	testClientID = "client-123"
	testSecret   = "s3cr3t-client-secret"
	testIDIssuer = "https://auth.example.test/oauth2/v3/nts"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var ks []*rsa.PrivateKey
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks = append(ks, k)
	}
	return ks
})

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

type provider struct {
	t   *testing.T
	srv *httptest.Server

	mu             sync.Mutex
	keys           []signingKey      // published in the JWKS
	extraKeys      []jose.JSONWebKey // published after keys (EC, OKP, ...)
	discoveryFails int               // answer 503 this many times first
	discoveryIss   string
	meta           map[string]any // overrides of the metadata (nil value: field removed)
	handlers       map[string]http.HandlerFunc

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{t: t, handlers: map[string]http.HandlerFunc{}}
	p.keys = []signingKey{{kid: "k1", priv: rsaKeys()[0]}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.discoveryIss = "https://auth.example.test/oauth2/v3" // differs from the server URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) url(path string) string { return p.srv.URL + path }

func (p *provider) handle(path string, h http.HandlerFunc) {
	p.mu.Lock()
	p.handlers[path] = h
	p.mu.Unlock()
}

// setMeta overrides metadata fields (a nil value removes the field).
func (p *provider) setMeta(kv map[string]any) {
	p.mu.Lock()
	p.meta = kv
	p.mu.Unlock()
}

func (p *provider) setKeys(keys ...signingKey) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	h := p.handlers[r.URL.Path]
	p.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		p.discoveryHits.Add(1)
		p.mu.Lock()
		fail := p.discoveryFails > 0
		if fail {
			p.discoveryFails--
		}
		iss := p.discoveryIss
		m := map[string]any{
			"issuer":                 iss,
			"authorization_endpoint": p.url("/oauth2/v3/authorize"),
			"token_endpoint":         p.url("/oauth2/v3/token"),
			"userinfo_endpoint":      p.url("/oauth2/v3/userinfo"),
			"jwks_uri":               p.url("/oauth2/v3/discovery/keys"),
			// Tesla-like: credentials in the form, RS256.
			"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
		for k, v := range p.meta {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		p.mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, 200, m)
	case "/oauth2/v3/discovery/keys":
		p.jwksHits.Add(1)
		p.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
		}
		set.Keys = append(set.Keys, p.extraKeys...)
		p.mu.Unlock()
		writeJSON(w, 200, set)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newClient returns a Client against p with instant sleeps and a fake limiter clock.
func newClient(t *testing.T, p *provider, mod func(*Config)) (*Client, *fakeClock, *sleepLog) {
	t.Helper()
	cfg := Config{
		DiscoveryURL: p.url("/.well-known/openid-configuration"),
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RedirectURL:  "https://link.example.test/auth/tesla/callback",
		Issuers:      []string{testIDIssuer},
		Now:          func() time.Time { return testNow },
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
	}
	if mod != nil {
		mod(&cfg)
	}
	c := New(cfg)
	clk := &fakeClock{t: testNow}
	c.clock = clk.Now
	sl := &sleepLog{}
	c.sleep = sl.sleep
	return c, clk, sl
}

// sleepLog records requested sleeps instead of waiting.
type sleepLog struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleepLog) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepLog) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func mustDiscover(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Discover(ctx); err != nil {
		t.Fatalf("Discover: %v", err)
	}
}

// sign makes a compact RS256 JWS of claims with key.
func sign(t *testing.T, key signingKey, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsignedJWT builds an alg=none token.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"})
	b, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func idClaims(mod func(m map[string]any)) map[string]any {
	m := map[string]any{
		"iss":   testIDIssuer,
		"aud":   []string{testClientID},
		"sub":   "owner-sub-1",
		"iat":   testNow.Add(-time.Minute).Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
		"nonce": "nonce-abc",
	}
	if mod != nil {
		mod(m)
	}
	return m
}

func formOf(t *testing.T, r *http.Request) url.Values {
	t.Helper()
	if err := r.ParseForm(); err != nil {
		t.Errorf("ParseForm: %v", err)
	}
	return r.PostForm
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
