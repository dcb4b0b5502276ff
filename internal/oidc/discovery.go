package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// maxBody bounds every response body we read.
const maxBody = 1 << 20

// metadata is the subset of the OpenID provider metadata we use.
type metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	// TokenAuthMethods is token_endpoint_auth_methods_supported (absent → the OIDC
	// default, client_secret_basic).
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	// IDTokenAlgs is id_token_signing_alg_values_supported.
	IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
}

// state is everything derived from a successful discovery; immutable once stored.
type state struct {
	meta           metadata
	tokenURL       string
	callbackIssuer string
	issuers        []string
	verifiers      map[string]*gooidc.IDTokenVerifier
	oauth          *oauth2.Config
	// tesla is true when the discovery URL is on one of Tesla's hosts.
	tesla bool
	// authStyle is how the client authenticates at the token endpoint.
	authStyle oauth2.AuthStyle
	// sigAlgs are the accepted ID token signature algorithms.
	sigAlgs []jose.SignatureAlgorithm
}

// teslaHosts are the discovery hosts that trigger Tesla's defaults.
var teslaHosts = map[string]bool{
	"auth.tesla.com":                    true,
	"auth.tesla.cn":                     true,
	"fleet-auth.prd.vn.cloud.tesla.com": true,
}

// Ready reports whether discovery has succeeded.
func (c *Client) Ready() bool { return c.st.Load() != nil }

// Issuer returns the discovered `issuer` ("" before discovery).
func (c *Client) Issuer() string {
	if s := c.st.Load(); s != nil {
		return s.meta.Issuer
	}
	return ""
}

// Discover fetches the provider metadata, retrying with capped exponential backoff until
// it succeeds or ctx ends, and caches it. Once it has succeeded, later calls return nil at
// once. Safe for concurrent use.
func (c *Client) Discover(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := c.discoverOnce(ctx)
		if err == nil {
			return nil
		}
		d := backoff(c.retryBase, c.discoveryMax, attempt)
		c.log.WarnContext(ctx, "oidc discovery failed; retrying", "attempt", attempt, "retry_in", d, "err", err)
		if serr := c.sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
}

// StartDiscovery runs Discover in the background until success or ctx is done.
func (c *Client) StartDiscovery(ctx context.Context) {
	go func() {
		if err := c.Discover(ctx); err != nil {
			c.log.Warn("oidc discovery stopped before success", "err", err)
		}
	}()
}

// ensureReady returns the discovered state. If discovery has not succeeded it makes one
// attempt (joining a running one), unless an attempt failed within discoveryFailBackoff:
// a Tesla outage must not turn every page view into a slow discovery call.
func (c *Client) ensureReady(ctx context.Context, op string) (*state, error) {
	if s := c.st.Load(); s != nil {
		return s, nil
	}
	c.discoverMu.Lock()
	lastErr, lastAt := c.discoverErr, c.discoverErrAt
	running := c.discoverCall != nil
	c.discoverMu.Unlock()
	var err error
	if !running && lastErr != nil && c.clock().Sub(lastAt) < discoveryFailBackoff {
		err = lastErr
	} else {
		err = c.discoverOnce(ctx)
	}
	if err != nil {
		return nil, &Error{Kind: KindTransient, Op: op, Err: fmt.Errorf("%w: %w", ErrNotReady, err)}
	}
	return c.st.Load(), nil
}

// discoveryFailBackoff is how long a failed discovery answers callers of ensureReady
// without a new attempt (the background StartDiscovery loop keeps trying).
const discoveryFailBackoff = 2 * time.Second

// discoverCall is one running discovery attempt that others can join.
type discoverCall struct {
	done chan struct{}
	err  error
}

// discoverOnce makes one discovery attempt, or joins the running one. No-op once successful.
func (c *Client) discoverOnce(ctx context.Context) error {
	if c.st.Load() != nil {
		return nil
	}
	c.discoverMu.Lock()
	if c.st.Load() != nil {
		c.discoverMu.Unlock()
		return nil
	}
	if call := c.discoverCall; call != nil {
		c.discoverMu.Unlock()
		if err := waitCh(ctx, call.done); err != nil {
			return err
		}
		return call.err
	}
	call := &discoverCall{done: make(chan struct{})}
	c.discoverCall = call
	c.discoverMu.Unlock()

	call.err = c.discoverAttempt(ctx)

	c.discoverMu.Lock()
	c.discoverCall = nil
	if call.err != nil {
		c.discoverErr, c.discoverErrAt = call.err, c.clock()
	} else {
		c.discoverErr = nil
	}
	c.discoverMu.Unlock()
	close(call.done)
	return call.err
}

func (c *Client) discoverAttempt(ctx context.Context) error {
	m, err := c.fetchMetadata(ctx)
	if err != nil {
		return err
	}
	s, err := c.buildState(m)
	if err != nil {
		return err
	}
	c.st.Store(s)
	c.log.InfoContext(ctx, "oidc provider discovered", "issuer", s.meta.Issuer, "token_url", s.tokenURL, "accepted_issuers", s.issuers)
	return nil
}

func (c *Client) fetchMetadata(ctx context.Context) (metadata, error) {
	var m metadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.DiscoveryURL, nil)
	if err != nil {
		return m, &Error{Kind: KindConfig, Op: "discovery", Err: fmt.Errorf("bad discovery URL: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return m, transportError("discovery", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return m, transportError("discovery", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := classifyHTTP("discovery", resp.StatusCode, "", resp.Header, c.clock())
		if e.Kind == KindUnknown {
			e.Kind = KindConfig
		}
		return m, e
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, &Error{Kind: KindInvalid, Op: "discovery", Err: fmt.Errorf("decode metadata: %w", err)}
	}
	return m, nil
}

// buildState validates metadata and applies the configuration defaults.
func (c *Client) buildState(m metadata) (*state, error) {
	invalid := func(format string, a ...any) error {
		return &Error{Kind: KindInvalid, Op: "discovery", Err: fmt.Errorf(format, a...)}
	}
	if m.Issuer == "" {
		return nil, invalid("metadata has no issuer")
	}
	for name, v := range map[string]string{"authorization_endpoint": m.AuthorizationEndpoint, "jwks_uri": m.JWKSURI} {
		if !absURL(v) {
			return nil, invalid("metadata %s is missing or not an absolute URL", name)
		}
	}
	if m.UserinfoEndpoint != "" && !absURL(m.UserinfoEndpoint) {
		return nil, invalid("metadata userinfo_endpoint is not an absolute URL")
	}
	du, err := url.Parse(c.cfg.DiscoveryURL)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "discovery", Err: errors.New("bad discovery URL")}
	}
	host := strings.ToLower(du.Hostname())
	tesla := teslaHosts[host]

	s := &state{meta: m, tokenURL: c.cfg.TokenURL, callbackIssuer: c.cfg.CallbackIssuer, tesla: tesla}
	s.sigAlgs, err = idTokenAlgs(m, tesla)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "discovery", Err: err}
	}
	algNames := make([]string, len(s.sigAlgs))
	for i, a := range s.sigAlgs {
		algNames[i] = string(a)
	}
	s.authStyle = c.tokenAuthStyle(m, tesla)
	if s.tokenURL == "" {
		if tesla {
			s.tokenURL = DefaultTeslaTokenURL
		} else {
			s.tokenURL = m.TokenEndpoint
		}
	}
	if !absURL(s.tokenURL) {
		return nil, invalid("token endpoint is missing or not an absolute URL")
	}
	if s.callbackIssuer == "" {
		au := m.AuthorizationEndpoint
		if i := strings.IndexAny(au, "?#"); i >= 0 {
			au = au[:i]
		}
		s.callbackIssuer = strings.TrimSuffix(strings.TrimRight(au, "/"), "/authorize")
	}
	s.issuers = append([]string(nil), c.cfg.Issuers...)
	if len(s.issuers) == 0 {
		switch {
		case host == "auth.tesla.cn":
			s.issuers = []string{DefaultTeslaIssuer, DefaultTeslaIssuerCN}
		case tesla:
			s.issuers = []string{DefaultTeslaIssuer}
		default:
			s.issuers = []string{m.Issuer}
		}
	}
	s.verifiers = make(map[string]*gooidc.IDTokenVerifier, len(s.issuers))
	for _, iss := range s.issuers {
		if iss == "" {
			continue
		}
		s.verifiers[iss] = gooidc.NewVerifier(iss, c.keys, &gooidc.Config{
			ClientID:             c.cfg.ClientID,
			SupportedSigningAlgs: algNames,
			Now:                  c.now,
		})
	}
	s.oauth = &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  c.cfg.RedirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   m.AuthorizationEndpoint,
			TokenURL:  s.tokenURL,
			AuthStyle: s.authStyle,
		},
	}
	return s, nil
}

// standardSigAlgs are the asymmetric JWS algorithms accepted from a standard provider, in
// preference order. Never "none", never the HS* family (a shared secret is no proof of
// the issuer).
var standardSigAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// idTokenAlgs returns the accepted ID token algorithms: RS256 for Tesla; for a standard
// provider the intersection of id_token_signing_alg_values_supported with
// standardSigAlgs (absent → RS256, the OIDC default). An empty intersection is an error.
func idTokenAlgs(m metadata, tesla bool) ([]jose.SignatureAlgorithm, error) {
	if tesla || len(m.IDTokenAlgs) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256}, nil
	}
	var out []jose.SignatureAlgorithm
	for _, a := range standardSigAlgs {
		if slices.Contains(m.IDTokenAlgs, string(a)) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("provider signs ID tokens with no supported asymmetric algorithm (id_token_signing_alg_values_supported)")
	}
	return out, nil
}

// tokenAuthStyle picks the token endpoint client authentication: Tesla (and clients
// without a secret) send the credentials in the form; a standard provider gets
// client_secret_post when it lists it, else client_secret_basic (the OIDC default when
// token_endpoint_auth_methods_supported is absent).
func (c *Client) tokenAuthStyle(m metadata, tesla bool) oauth2.AuthStyle {
	if tesla || c.cfg.ClientSecret == "" || slices.Contains(m.TokenAuthMethods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	if len(m.TokenAuthMethods) > 0 && !slices.Contains(m.TokenAuthMethods, "client_secret_basic") {
		c.log.Warn("oidc provider lists neither client_secret_post nor client_secret_basic; trying client_secret_basic",
			"token_endpoint_auth_methods_supported", m.TokenAuthMethods)
	}
	return oauth2.AuthStyleInHeader
}

func absURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
