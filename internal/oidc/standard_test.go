package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Tests of the standard-provider behaviour (any discovery URL that is not Tesla's):
// audience only when configured, client authentication from the metadata, ID token
// algorithms from the metadata, and userinfo being optional.

// signAlg makes a compact JWS of claims with any key and algorithm.
func signAlg(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(mustJSON(claims))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tokenCapture records the form and Authorization header of token requests and answers
// with an opaque access token.
type tokenCapture struct {
	form atomic.Value // url.Values
	auth atomic.Value // string
}

func captureToken(t *testing.T, p *provider, answer map[string]any) *tokenCapture {
	t.Helper()
	tc := &tokenCapture{}
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		tc.form.Store(formOf(t, r))
		tc.auth.Store(r.Header.Get("Authorization"))
		writeJSON(w, 200, answer)
	})
	return tc
}

func (tc *tokenCapture) get(t *testing.T) (url.Values, string) {
	t.Helper()
	f, _ := tc.form.Load().(url.Values)
	a, _ := tc.auth.Load().(string)
	if f == nil {
		t.Fatal("no token request")
	}
	return f, a
}

// basicCreds decodes an RFC 6749 section 2.3.1 Basic header.
func basicCreds(t *testing.T, h string) (id, secret string) {
	t.Helper()
	raw, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		t.Fatalf("Authorization = %q, want Basic", h)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	i, s, _ := strings.Cut(string(b), ":")
	id, _ = url.QueryUnescape(i)
	secret, _ = url.QueryUnescape(s)
	return id, secret
}

func TestStandardProviderExchangeSendsNoDefaultAudience(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	tc := captureToken(t, p, map[string]any{"access_token": "opaque-at", "refresh_token": "rt", "token_type": "Bearer", "expires_in": 3600})
	c, _, _ := newClient(t, p, nil)
	if c.SendsAudience() {
		t.Error("a standard provider without TESLA_AUDIENCE must not get an audience")
	}
	tok, err := c.Exchange(context.Background(), "code-1", testVerifier, "")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := tc.get(t)
	if f.Has("audience") {
		t.Errorf("audience sent to a standard provider: %q", f.Get("audience"))
	}
	// Opaque access token: no scopes, no region, expiry from expires_in, no error.
	if tok.Scopes != nil || tok.Region != "" || tok.Expiry.IsZero() || tok.AccessToken != "opaque-at" {
		t.Errorf("tokens = %+v", tok)
	}
	// The default audience still names the NA region for region fallbacks.
	if c.Audience() != DefaultTeslaAudience {
		t.Errorf("Audience() = %q", c.Audience())
	}

	// Configured explicitly (TESLA_AUDIENCE): sent.
	p2 := newProvider(t)
	tc2 := captureToken(t, p2, map[string]any{"access_token": "opaque-at", "token_type": "Bearer"})
	c2, _, _ := newClient(t, p2, func(cfg *Config) { cfg.Audience = "https://api.example.org/" })
	if _, err := c2.Exchange(context.Background(), "code-1", testVerifier, ""); err != nil {
		t.Fatal(err)
	}
	if f, _ := tc2.get(t); f.Get("audience") != "https://api.example.org/" {
		t.Errorf("explicit audience = %q", f.Get("audience"))
	}
}

// teslaRoute sends every request, whatever its host, to the test provider: it lets a
// Client with Tesla's discovery URL talk to the fixture.
type teslaRoute struct{ target *url.URL }

func (r teslaRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration") {
		req.URL.Path = "/.well-known/openid-configuration"
	}
	req.URL.Scheme, req.URL.Host, req.Host = r.target.Scheme, r.target.Host, r.target.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestStandardProviderTeslaHostKeepsTeslaBehaviour(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	// Metadata that would switch a standard provider to Basic auth and ES256.
	p.setMeta(map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"id_token_signing_alg_values_supported": []string{"ES256"}})
	tc := captureToken(t, p, map[string]any{"access_token": "at", "refresh_token": "NA_rt", "token_type": "Bearer"})
	target, _ := url.Parse(p.srv.URL)
	c, _, _ := newClient(t, p, func(cfg *Config) {
		cfg.DiscoveryURL = DefaultDiscoveryURL
		cfg.HTTPClient = &http.Client{Transport: teslaRoute{target}}
	})
	if !c.SendsAudience() || !c.IsTesla() {
		t.Error("Tesla must get an audience and count as Tesla (for the Fleet API region lookup)")
	}
	if _, err := c.Exchange(context.Background(), "NA_code", testVerifier, ""); err != nil {
		t.Fatal(err)
	}
	f, auth := tc.get(t)
	if f.Get("audience") != DefaultTeslaAudience || f.Get("client_secret") != testSecret || auth != "" {
		t.Errorf("Tesla exchange: form %v, Authorization %q", f, auth)
	}
	s := c.st.Load()
	if s.authStyle != oauth2.AuthStyleInParams || !slices.Equal(s.sigAlgs, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Errorf("Tesla state: auth style %v, algs %v", s.authStyle, s.sigAlgs)
	}
	// Refresh keeps Tesla's shape: no client_secret at all.
	if _, err := c.Refresh(context.Background(), "NA_rt", "", ""); err != nil {
		t.Fatal(err)
	}
	if f, auth := tc.get(t); f.Has("client_secret") || auth != "" || f.Get("client_id") != testClientID {
		t.Errorf("Tesla refresh: form %v, Authorization %q", f, auth)
	}
}

func TestStandardProviderTokenAuthMethod(t *testing.T) {
	t.Parallel()
	const oddSecret = "s3cr:t/+ é&=" // needs form-encoding inside Basic
	tests := []struct {
		name    string
		methods any // nil: field absent
		basic   bool
	}{
		{"absent means client_secret_basic", nil, true},
		{"basic only", []string{"client_secret_basic", "private_key_jwt"}, true},
		{"post preferred when listed", []string{"client_secret_basic", "client_secret_post"}, false},
		{"post only", []string{"client_secret_post"}, false},
		{"neither: try basic", []string{"private_key_jwt"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			p.setMeta(map[string]any{"token_endpoint_auth_methods_supported": tc.methods})
			capt := captureToken(t, p, map[string]any{"access_token": "at", "refresh_token": "rt2", "token_type": "Bearer"})
			c, _, _ := newClient(t, p, func(cfg *Config) { cfg.ClientSecret = oddSecret })
			check := func(op string) {
				t.Helper()
				f, auth := capt.get(t)
				if tc.basic {
					id, secret := basicCreds(t, auth)
					if id != testClientID || secret != oddSecret || f.Has("client_secret") {
						t.Errorf("%s: basic creds %q/%q, form %v", op, id, secret, f)
					}
				} else if auth != "" || f.Get("client_secret") != oddSecret || f.Get("client_id") != testClientID {
					t.Errorf("%s: post form %v, Authorization %q", op, f, auth)
				}
			}
			if _, err := c.Exchange(context.Background(), "code", testVerifier, ""); err != nil {
				t.Fatal(err)
			}
			check("exchange")
			if _, err := c.Refresh(context.Background(), "rt1", "", ""); err != nil {
				t.Fatal(err)
			}
			check("refresh")
			if _, err := c.PartnerToken(context.Background(), "https://fleet.example"); err != nil {
				t.Fatal(err)
			}
			check("partner token")
		})
	}
}

func TestStandardProviderRefreshKeepsRefreshTokenWhenNoneIssued(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": "opaque-2", "token_type": "Bearer", "expires_in": 300})
	})
	c, _, _ := newClient(t, p, nil)
	tok, err := c.Refresh(context.Background(), "rt-keep", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "rt-keep" || tok.Scopes != nil {
		t.Errorf("tokens = %+v", tok)
	}
}

func TestStandardProviderJWTAccessTokenScopeClaim(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	at := sign(t, signingKey{"k1", rsaKeys()[0]}, map[string]any{"sub": "x", "scope": "openid offline_access user_data", "exp": testNow.Add(300e9).Unix()})
	captureToken(t, p, map[string]any{"access_token": at, "token_type": "Bearer"})
	c, _, _ := newClient(t, p, nil)
	tok, err := c.Exchange(context.Background(), "code", testVerifier, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tok.Scopes, " ") != "openid offline_access user_data" || tok.Expiry.IsZero() {
		t.Errorf("tokens = %+v", tok)
	}
}

func TestStandardProviderIDTokenAlgorithms(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	rsaKey := rsaKeys()[0]
	claims := idClaims(nil)
	tokens := map[string]string{
		"RS256": sign(t, signingKey{"k1", rsaKey}, claims),
		"PS256": signAlg(t, jose.PS256, rsaKeys()[1], "ps1", claims),
		"ES256": signAlg(t, jose.ES256, ec, "ec1", claims),
		"EdDSA": signAlg(t, jose.EdDSA, edPriv, "ed1", claims),
		"HS256": signAlg(t, jose.HS256, hmacKey, "k1", claims),
		"none":  unsignedJWT(t, claims),
	}
	tests := []struct {
		name   string
		algs   any // id_token_signing_alg_values_supported; nil: absent
		accept []string
	}{
		{"absent means RS256", nil, []string{"RS256"}},
		{"ES256 only", []string{"ES256"}, []string{"ES256"}},
		{"mixed list never takes HS256 or none", []string{"none", "HS256", "ES256", "RS256", "PS256", "EdDSA"}, []string{"RS256", "PS256", "ES256", "EdDSA"}},
		{"RS256 only refuses EC", []string{"RS256"}, []string{"RS256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			p.setMeta(map[string]any{"id_token_signing_alg_values_supported": tc.algs})
			p.mu.Lock()
			p.extraKeys = []jose.JSONWebKey{
				{Key: &ec.PublicKey, KeyID: "ec1", Algorithm: "ES256", Use: "sig"},
				{Key: edPub, KeyID: "ed1", Use: "sig"},
				{Key: &rsaKeys()[1].PublicKey, KeyID: "ps1"},                 // no alg, no use: any accepted RSA alg
				{Key: hmacKey, KeyID: "hs1", Algorithm: "HS256", Use: "sig"}, // symmetric: never used
			}
			p.mu.Unlock()
			c, _, _ := newClient(t, p, nil)
			for alg, raw := range tokens {
				_, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc")
				want := slices.Contains(tc.accept, alg)
				if (err == nil) != want {
					t.Errorf("%s token: err = %v, want accepted=%v", alg, err, want)
				}
			}
		})
	}
}

func TestStandardProviderDiscoverRefusesOnlySymmetricAlgs(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.setMeta(map[string]any{"id_token_signing_alg_values_supported": []string{"HS256", "none"}})
	c, _, _ := newClient(t, p, nil)
	err := c.discoverOnce(context.Background())
	if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "algorithm") {
		t.Fatalf("discovery err = %v", err)
	}
}

func TestStandardProviderKeyJWKAlgMustMatch(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.setMeta(map[string]any{"id_token_signing_alg_values_supported": []string{"RS256", "PS256"}})
	p.setKeys() // only the key below, which is bound to PS256
	p.mu.Lock()
	p.extraKeys = []jose.JSONWebKey{{Key: &rsaKeys()[0].PublicKey, KeyID: "k1", Algorithm: "PS256", Use: "sig"}}
	p.mu.Unlock()
	c, _, _ := newClient(t, p, nil)
	if _, err := c.VerifyIDToken(context.Background(), signAlg(t, jose.PS256, rsaKeys()[0], "k1", idClaims(nil)), "nonce-abc"); err != nil {
		t.Errorf("PS256 with its key: %v", err)
	}
	if _, err := c.VerifyIDToken(context.Background(), sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(nil)), "nonce-abc"); err == nil {
		t.Error("RS256 token accepted with a key bound to PS256")
	}
}

func TestStandardProviderProfileWithoutUserinfo(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.setMeta(map[string]any{"userinfo_endpoint": nil})
	var hits atomic.Int32
	p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	c, _, _ := newClient(t, p, nil)
	raw := sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(func(m map[string]any) {
		m["email"] = "ada@example.org"
		m["preferred_username"] = "ada"
	}))
	claims, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc")
	if err != nil {
		t.Fatal(err)
	}
	if c.HasUserInfo() {
		t.Error("HasUserInfo with no userinfo_endpoint")
	}
	ui, err := c.Profile(context.Background(), "opaque", claims)
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "owner-sub-1" || ui.Email != "ada@example.org" || ui.Name != "ada" || hits.Load() != 0 {
		t.Errorf("profile = %+v (userinfo hits %d)", ui, hits.Load())
	}
	// `name` wins over preferred_username; non-string claims are ignored.
	raw = sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(func(m map[string]any) {
		m["name"] = "Ada Lovelace"
		m["preferred_username"] = "ada"
		m["email"] = 42
	}))
	claims, err = c.VerifyIDToken(context.Background(), raw, "nonce-abc")
	if err != nil {
		t.Fatal(err)
	}
	if claims.Name != "Ada Lovelace" || claims.Email != "" {
		t.Errorf("claims = %+v", claims)
	}
}

func TestStandardProviderProfileWithUserinfo(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var sub atomic.Value
	sub.Store("owner-sub-1")
	p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer opaque" {
			w.WriteHeader(401)
			return
		}
		writeJSON(w, 200, map[string]any{"sub": sub.Load(), "name": "From Userinfo"})
	})
	c, _, _ := newClient(t, p, nil)
	claims := &IDClaims{Subject: "owner-sub-1", Email: "idtoken@example.org", Name: "From ID token"}
	ui, err := c.Profile(context.Background(), "opaque", claims)
	if err != nil {
		t.Fatal(err)
	}
	if ui.Name != "From Userinfo" || ui.Email != "idtoken@example.org" {
		t.Errorf("profile = %+v", ui)
	}
	sub.Store("someone-else")
	if _, err := c.Profile(context.Background(), "opaque", claims); !errors.Is(err, ErrSubMismatch) {
		t.Errorf("sub mismatch: err = %v", err)
	}
}
