// Package oidctest is test support: a small standard OpenID Connect provider on loopback,
// deliberately unlike Tesla, so tests prove teslalink works against any provider. Its
// discovery `issuer` equals its URL; it signs ID tokens with ES256 (or RS256); its token
// endpoint accepts only client_secret_basic and refuses an `audience` parameter; access
// and refresh tokens are opaque; refresh tokens rotate; the callback carries RFC 9207's
// `iss`; the userinfo endpoint can be switched off; and it can refuse unknown scopes with
// error=invalid_scope. Authorization is auto-consent: the authorize endpoint redirects at once.
package oidctest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Config tunes a Provider. Zero values take the defaults named on each field.
type Config struct {
	// ClientID and ClientSecret of the one registered client ("" → "test-client" and a random secret).
	ClientID, ClientSecret string
	// RedirectURIs the client may use; empty → any absolute http(s) URL.
	RedirectURIs []string
	// Alg signs ID tokens: "ES256" (default) or "RS256".
	Alg string
	// NoUserInfo leaves userinfo_endpoint out of the metadata (and answers 404 there).
	NoUserInfo bool
	// NoIss leaves RFC 9207's `iss` parameter off the callback.
	NoIss bool
	// Scopes are the scopes the provider knows; a request for another one is refused
	// with error=invalid_scope. nil → every scope is accepted.
	Scopes []string
	// DropScopes are requested scopes the owner does not grant; the token response then
	// names the granted `scope` (it omits `scope` when everything asked was granted).
	DropScopes []string
	// NoRotation keeps refresh tokens valid and leaves refresh_token out of refresh answers.
	NoRotation bool
	// Subject, Email and Name describe the one owner ("" → "owner-1", "owner@example.com", "Test Owner").
	Subject, Email, Name string
	// AccessTTL is the access token lifetime sent as expires_in (0 → 1 hour).
	AccessTTL time.Duration
	// Now is the clock for token times (nil → time.Now).
	Now func() time.Time
}

// Provider is a running standard OpenID provider. Safe for concurrent use.
type Provider struct {
	cfg    Config
	srv    *httptest.Server
	signer jose.Signer
	jwk    jose.JSONWebKey

	mu      sync.Mutex
	codes   map[string]*grant
	access  map[string]*grant
	refresh map[string]*grant
	secrets []string
	stats   Stats
}

// grant is what a code or token stands for.
type grant struct {
	scopes                 []string
	nonce, challenge, redi string
	used                   bool
	expires                time.Time
}

// Stats counts what the token endpoint saw.
type Stats struct {
	Exchanges, Refreshes int // successful grants
	BasicAuth            int // requests authenticated with client_secret_basic
	SecretInForm         int // requests refused for a client_secret in the form
	AudienceRefused      int // requests refused for an `audience` parameter
	UserInfoCalls        int
}

// New starts a Provider on loopback; call Close when done.
func New(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "test-client"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "cs-" + randomToken()
	}
	if cfg.Alg == "" {
		cfg.Alg = string(jose.ES256)
	}
	if cfg.Subject == "" {
		cfg.Subject = "owner-1"
	}
	if cfg.Email == "" {
		cfg.Email = "owner@example.com"
	}
	if cfg.Name == "" {
		cfg.Name = "Test Owner"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var priv crypto.Signer
	var err error
	switch jose.SignatureAlgorithm(cfg.Alg) {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("oidctest: unsupported alg %q", cfg.Alg)
	}
	if err != nil {
		return nil, fmt.Errorf("oidctest: generate key: %w", err)
	}
	p := &Provider{cfg: cfg, codes: map[string]*grant{}, access: map[string]*grant{}, refresh: map[string]*grant{},
		secrets: []string{cfg.ClientSecret}}
	p.jwk = jose.JSONWebKey{Key: priv.Public(), KeyID: "key-" + randomToken()[:8], Algorithm: cfg.Alg, Use: "sig"}
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(cfg.Alg),
		Key: jose.JSONWebKey{Key: priv, KeyID: p.jwk.KeyID}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("oidctest: signer: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("GET /jwks", p.jwks)
	p.srv = httptest.NewServer(mux)
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// URL is the provider's base URL, which is also its issuer.
func (p *Provider) URL() string { return p.srv.URL }

// Issuer is the discovery `issuer` and the ID tokens' `iss`.
func (p *Provider) Issuer() string { return p.srv.URL }

// DiscoveryURL is the OpenID metadata URL.
func (p *Provider) DiscoveryURL() string { return p.srv.URL + "/.well-known/openid-configuration" }

// ClientID returns the registered client id.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// ClientSecret returns the registered client secret.
func (p *Provider) ClientSecret() string { return p.cfg.ClientSecret }

// Config returns the provider's configuration after defaults.
func (p *Provider) Config() Config { return p.cfg }

// Stats returns the counters so far.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Secrets returns every secret the provider issued (client secret, codes, tokens) for leak checks.
func (p *Provider) Secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.secrets)
}

// Authorize plays the owner's browser at the authorize endpoint (auto-consent) and
// returns the URL the provider redirects to: the callback with code (or error), state and iss.
func (p *Provider) Authorize(ctx context.Context, authorizeURL string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, fmt.Errorf("oidctest: authorize request: %w", err)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidctest: authorize: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("oidctest: authorize answered %d", res.StatusCode)
	}
	return url.Parse(res.Header.Get("Location"))
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	m := map[string]any{
		"issuer":                                         p.Issuer(),
		"authorization_endpoint":                         p.srv.URL + "/authorize",
		"token_endpoint":                                 p.srv.URL + "/token",
		"jwks_uri":                                       p.srv.URL + "/jwks",
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"public"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"id_token_signing_alg_values_supported":          []string{p.cfg.Alg},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic"},
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": !p.cfg.NoIss,
	}
	if !p.cfg.NoUserInfo {
		m["userinfo_endpoint"] = p.srv.URL + "/userinfo"
	}
	if p.cfg.Scopes != nil {
		m["scopes_supported"] = p.cfg.Scopes
	}
	writeJSON(w, http.StatusOK, m)
}

func (p *Provider) redirectOK(uri string) bool {
	if len(p.cfg.RedirectURIs) > 0 {
		return slices.Contains(p.cfg.RedirectURIs, uri)
	}
	u, err := url.Parse(uri)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == ""
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != p.cfg.ClientID || !p.redirectOK(redirect) {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		if !p.cfg.NoIss {
			v.Set("iss", p.Issuer())
		}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirect+sep+v.Encode(), http.StatusFound)
	}
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case !slices.Contains(scopes, "openid"):
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"openid is required"}})
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"only S256"}})
		return
	}
	if p.cfg.Scopes != nil {
		for _, s := range scopes {
			if !slices.Contains(p.cfg.Scopes, s) {
				back(url.Values{"error": {"invalid_scope"}, "error_description": {"unknown scope"}})
				return
			}
		}
	}
	var granted []string
	for _, s := range scopes {
		if !slices.Contains(p.cfg.DropScopes, s) {
			granted = append(granted, s)
		}
	}
	code := "code-" + randomToken()
	p.mu.Lock()
	p.codes[code] = &grant{scopes: granted, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redi: redirect,
		expires: p.cfg.Now().Add(time.Minute)}
	p.secrets = append(p.secrets, code)
	p.mu.Unlock()
	back(url.Values{"code": {code}})
}

// clientOK checks client_secret_basic; a secret in the form is refused (this provider
// only supports client_secret_basic).
func (p *Provider) clientOK(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := r.PostForm["client_secret"]; ok {
		p.count(func(s *Stats) { s.SecretInForm++ })
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_secret_post is not supported")
		return false
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		ok = err1 == nil && err2 == nil
	}
	if !ok || id != p.cfg.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return false
	}
	if cid := r.PostForm.Get("client_id"); cid != "" && cid != id {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id does not match")
		return false
	}
	p.count(func(s *Stats) { s.BasicAuth++ })
	return true
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if !p.clientOK(w, r) {
		return
	}
	if _, ok := r.PostForm["audience"]; ok {
		p.count(func(s *Stats) { s.AudienceRefused++ })
		oauthError(w, http.StatusBadRequest, "invalid_request", "unknown audience")
		return
	}
	f := r.PostForm
	now := p.cfg.Now()
	switch f.Get("grant_type") {
	case "authorization_code":
		p.mu.Lock()
		g := p.codes[f.Get("code")]
		valid := g != nil && !g.used && now.Before(g.expires)
		if g != nil {
			g.used = true
		}
		p.mu.Unlock()
		switch {
		case !valid:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code is invalid, expired or used")
			return
		case f.Get("redirect_uri") != g.redi:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
			return
		case g.challenge != "" && s256(f.Get("code_verifier")) != g.challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
		p.issue(w, g, true, true)
		p.count(func(s *Stats) { s.Exchanges++ })
	case "refresh_token":
		rt := f.Get("refresh_token")
		p.mu.Lock()
		g := p.refresh[rt]
		if g != nil && !p.cfg.NoRotation {
			delete(p.refresh, rt)
		}
		p.mu.Unlock()
		if g == nil {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid")
			return
		}
		p.issue(w, &grant{scopes: g.scopes}, !p.cfg.NoRotation, false)
		p.count(func(s *Stats) { s.Refreshes++ })
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
	}
}

// issue answers with fresh opaque tokens (and a signed ID token) for g.
func (p *Provider) issue(w http.ResponseWriter, g *grant, withRefresh, withNonce bool) {
	now := p.cfg.Now()
	at := "at-" + randomToken()
	out := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(p.cfg.AccessTTL.Seconds())}
	claims := map[string]any{"iss": p.Issuer(), "aud": p.cfg.ClientID, "sub": p.cfg.Subject, "iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "email": p.cfg.Email, "preferred_username": p.cfg.Name}
	if withNonce && g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	idt, err := p.sign(claims)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	out["id_token"] = idt
	p.mu.Lock()
	p.access[at] = &grant{scopes: g.scopes, expires: now.Add(p.cfg.AccessTTL)}
	p.secrets = append(p.secrets, at)
	if withRefresh && slices.Contains(g.scopes, "offline_access") {
		rt := "rt-" + randomToken()
		p.refresh[rt] = &grant{scopes: g.scopes}
		p.secrets = append(p.secrets, rt)
		out["refresh_token"] = rt
	}
	p.mu.Unlock()
	if len(p.cfg.DropScopes) > 0 {
		out["scope"] = strings.Join(g.scopes, " ")
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Provider) sign(claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if p.cfg.NoUserInfo {
		http.NotFound(w, r)
		return
	}
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	g := p.access[at]
	p.stats.UserInfoCalls++
	p.mu.Unlock()
	if !ok || g == nil || !p.cfg.Now().Before(g.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": p.cfg.Subject, "email": p.cfg.Email, "name": p.cfg.Name})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.jwk}})
}

func (p *Provider) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	m := map[string]string{"error": code}
	if desc != "" {
		m["error_description"] = desc
	}
	writeJSON(w, status, m)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("oidctest: no randomness"))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
