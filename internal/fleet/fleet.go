// Package fleet calls Tesla's Fleet API: the regional base URLs, the owner's region
// (users/region), the vehicle list, and the registration of this app's domain in a
// region (partner_accounts). It speaks no OAuth itself: the owner's access tokens come
// from the link service, and partner tokens from internal/oidc. Its errors are
// *oidc.Error with oidc's Kinds (403 → KindForbidden, 412 → KindNotRegistered,
// 421 → KindRegion, 429 and 5xx → KindTransient, ...), so callers classify every Tesla
// error with one vocabulary.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"teslalink/internal/oidc"
)

// DefaultRegionBaseURLs are Tesla's Fleet API base URLs per teslalink region code.
func DefaultRegionBaseURLs() map[string]string {
	return map[string]string{
		"na": oidc.DefaultTeslaAudience, // the code exchange's default audience
		"eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
		"cn": "https://fleet-api.prd.cn.vn.cloud.tesla.cn",
	}
}

// Config configures a Client. Empty fields take the defaults documented on each field.
type Config struct {
	// RegionBaseURLs maps "na", "eu", "cn" to Fleet API base URLs; missing entries take Tesla's.
	RegionBaseURLs map[string]string
	// Auth is the client of the authorization server: it issues the partner tokens of
	// RegisterPartner and tells whether the owners' access tokens are Tesla's. nil: no
	// partner registration, and tokens are taken as not Tesla's.
	Auth *oidc.Client
	// HTTPClient is used for every call. nil → oidc.NewHTTPClient() (timeouts, no
	// redirects to another host). Never http.DefaultClient.
	HTTPClient *http.Client
}

// Client calls the Fleet API. It is safe for concurrent use.
type Client struct {
	regions map[string]string
	auth    *oidc.Client
	http    *http.Client
	now     func() time.Time // reads Retry-After dates
}

// New returns a Client. It performs no network I/O.
func New(cfg Config) *Client {
	regions := DefaultRegionBaseURLs()
	for k, v := range cfg.RegionBaseURLs {
		if v != "" {
			regions[strings.ToLower(k)] = strings.TrimRight(v, "/")
		}
	}
	c := &Client{regions: regions, auth: cfg.Auth, http: cfg.HTTPClient, now: time.Now}
	if c.http == nil || c.http == http.DefaultClient {
		c.http = oidc.NewHTTPClient()
	}
	return c
}

// RegionBaseURL returns the Fleet API base URL of a region code ("na", "eu", "cn"; case-insensitive).
func (c *Client) RegionBaseURL(region string) (string, bool) {
	u, ok := c.regions[strings.ToLower(region)]
	return u, ok
}

// Usable reports whether the Fleet API is worth asking with the owners' access tokens:
// true when they are Tesla's (Tesla's own sign-in) and whenever the base URLs were
// configured (the simulator, a test double); false for a standard OpenID provider with
// Tesla's default Fleet URLs, whose tokens Tesla would not accept anyway.
func (c *Client) Usable() bool {
	if c.auth != nil && c.auth.IsTesla() {
		return true
	}
	return !maps.Equal(c.regions, DefaultRegionBaseURLs())
}

// maxBody bounds every response body read.
const maxBody = 1 << 20

// doJSON performs one bearer-authenticated JSON request (in, when not nil, is the JSON
// body) and returns the 2xx body.
func (c *Client) doJSON(ctx context.Context, op, method, rawURL, bearer string, in any) ([]byte, error) {
	if !absURL(rawURL) {
		return nil, &oidc.Error{Kind: oidc.KindConfig, Op: op, Err: errors.New("bad URL")}
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, &oidc.Error{Kind: oidc.KindUnknown, Op: op, Err: fmt.Errorf("encode request: %w", err)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, &oidc.Error{Kind: oidc.KindConfig, Op: op, Err: errors.New("bad request")}
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &oidc.Error{Kind: oidc.KindTransient, Op: op, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &oidc.Error{Kind: oidc.KindTransient, Op: op, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, oidc.ResourceError(op, resp.StatusCode, body, resp.Header, c.now())
	}
	return body, nil
}

// absURL reports whether v is an absolute http(s) URL with a host.
func absURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
