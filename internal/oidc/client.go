// Package oidc is teslalink's OAuth 2.0 / OpenID Connect client for Tesla's authorization
// server (or any OpenID provider): discovery (with Tesla's issuer quirk), the authorize URL,
// the code exchange with `audience`, ID token verification including the checks go-oidc
// leaves to callers, userinfo, refresh with bounded retries, partner tokens (the
// client-credentials grant), and the classification of errors into Kinds. The Fleet API
// itself (regional base URLs, vehicles, partner registration) is internal/fleet, which
// reports its errors with this package's Error and Kinds.
package oidc

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"teslalink/internal/ratelimit"
)

// Default Tesla values.
const (
	DefaultDiscoveryURL  = "https://auth.tesla.com/oauth2/v3/thirdparty/.well-known/openid-configuration"
	DefaultTeslaTokenURL = "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token"
	DefaultTeslaIssuer   = "https://auth.tesla.com/oauth2/v3/nts"
	DefaultTeslaIssuerCN = "https://auth.tesla.cn/oauth2/v3/nts"
	// DefaultTeslaAudience is Tesla's NA Fleet API base URL, the code exchange's default
	// `audience` for Tesla's hosts.
	DefaultTeslaAudience = "https://fleet-api.prd.na.vn.cloud.tesla.com"
	// DefaultPartnerScopes is the scope requested for the client_credentials partner token.
	DefaultPartnerScopes = "openid user_data vehicle_device_data vehicle_cmds vehicle_charging_cmds energy_device_data energy_cmds"
	defaultRevokeHost    = "https://auth.tesla.com"
)

// Config configures a Client. Empty fields take the defaults documented on each field.
type Config struct {
	// DiscoveryURL is the OpenID metadata URL ("" → DefaultDiscoveryURL).
	DiscoveryURL string
	// ClientID and ClientSecret identify the app registered at Tesla. An empty
	// ClientSecret makes this a public client (Tesla's "open source app"): PKCE only,
	// no secret sent to any endpoint, and no partner token.
	ClientID, ClientSecret string
	// RedirectURL is PUBLIC_URL + "/auth/tesla/callback", sent byte-identically to authorize and token.
	RedirectURL string
	// TokenURL overrides the token endpoint. "" → Tesla's fleet-auth host when the discovery
	// URL is Tesla's own, otherwise the discovered token_endpoint.
	TokenURL string
	// Issuers are the accepted ID token `iss` values. Empty → Tesla's nts issuer(s) when the
	// discovery URL is Tesla's own, otherwise the discovered issuer.
	Issuers []string
	// CallbackIssuer is the expected `issuer` callback parameter. "" → the discovered
	// authorization_endpoint without its trailing "/authorize".
	CallbackIssuer string
	// Audience is the Fleet API base URL sent as `audience` in the code exchange
	// ("" → DefaultAudience). Tesla's hosts always get an audience; any other provider (the
	// simulator included) only when Audience is set here, because standard providers reject
	// audiences they do not know.
	Audience string
	// DefaultAudience stands in for an empty Audience: the Fleet API base URL of the NA
	// region ("" → DefaultTeslaAudience).
	DefaultAudience string
	// HTTPClient is used for every call to the provider. nil → a client of our own with
	// timeouts (10s overall, dial 5s, TLS 5s, response header 10s). Never http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives operational logs (never token values). nil → discard.
	Logger *slog.Logger
	// Now is the clock for ID token time checks. nil → time.Now.
	Now func() time.Time
	// MaxAttempts bounds the attempts of Refresh and the partner token request (default 3).
	MaxAttempts int
	// PartnerScopes is the scope of the client_credentials partner token ("" → DefaultPartnerScopes).
	PartnerScopes string
	// TokenBudget is this client's budget of calls to the token endpoint (code
	// exchanges, refreshes, partner tokens, retries included). Beyond it a call fails at
	// once with ErrTokenBudget (KindTransient, with a RetryAfter), so no caller can use
	// up the app's rate limit at Tesla. nil: no budget.
	TokenBudget *ratelimit.Bucket
}

// Client talks to Tesla (or any OpenID provider). It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
	now  func() time.Time
	// audienceSet is true when Config.Audience was given (not defaulted).
	audienceSet bool

	// clock drives rate limits and backoff bookkeeping (real time; tests may replace it).
	clock func() time.Time
	// sleep waits d or until ctx is done (tests replace it to avoid real waiting).
	sleep func(ctx context.Context, d time.Duration) error
	// jwksMinInterval is the minimum time between unknown-kid JWKS refetches.
	jwksMinInterval time.Duration
	// backoff parameters.
	retryBase, retryMax, discoveryMax time.Duration

	discoverMu    sync.Mutex // guards the three fields below
	discoverCall  *discoverCall
	discoverErr   error
	discoverErrAt time.Time
	st            atomic.Pointer[state]
	keys          *keySet
	tokenBudget   *ratelimit.Bucket // nil: no budget
}

// New returns a Client. It performs no network I/O; call Discover or StartDiscovery.
func New(cfg Config) *Client {
	if cfg.DiscoveryURL == "" {
		cfg.DiscoveryURL = DefaultDiscoveryURL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.PartnerScopes == "" {
		cfg.PartnerScopes = DefaultPartnerScopes
	}
	audienceSet := cfg.Audience != ""
	if !audienceSet {
		cfg.Audience = strings.TrimRight(cfg.DefaultAudience, "/")
		if cfg.Audience == "" {
			cfg.Audience = DefaultTeslaAudience
		}
	}
	c := &Client{
		cfg:             cfg,
		audienceSet:     audienceSet,
		http:            cfg.HTTPClient,
		log:             cfg.Logger,
		now:             cfg.Now,
		clock:           time.Now,
		sleep:           sleepCtx,
		jwksMinInterval: 15 * time.Second,
		retryBase:       250 * time.Millisecond,
		retryMax:        5 * time.Second,
		discoveryMax:    30 * time.Second,
	}
	if c.http == nil || c.http == http.DefaultClient {
		c.http = NewHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.keys = &keySet{c: c}
	c.tokenBudget = cfg.TokenBudget
	return c
}

// NewHTTPClient returns an HTTP client for calls to Tesla: timeouts on every phase, and
// redirects followed only within the same host and never from HTTPS to plain HTTP.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: sameHostRedirects,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ForceAttemptHTTP2:     true,
		},
	}
}

// sameHostRedirects follows at most 3 redirects, only to the same host without a
// downgrade to plain HTTP, so a token request (client secret, codes) never travels elsewhere.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	prev := via[len(via)-1].URL
	if req.URL.Host != prev.Host || (prev.Scheme == "https" && req.URL.Scheme != "https") {
		return http.ErrUseLastResponse
	}
	return nil
}

// Audience returns the code exchange's audience: Config.Audience, else Config.DefaultAudience.
func (c *Client) Audience() string { return c.cfg.Audience }

// PublicClient reports whether the client has no secret (PKCE only).
func (c *Client) PublicClient() bool { return c.cfg.ClientSecret == "" }

// TokenBudget returns the budget of calls to the token endpoint (nil: none).
func (c *Client) TokenBudget() *ratelimit.Bucket { return c.tokenBudget }

// ClientID returns the configured client id.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the delay before attempt n+1 (n ≥ 1): exponential with full jitter, capped.
func backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	// Full jitter in [d/2, d].
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
