package oidc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken, RefreshToken, IDToken string
	// Expiry of the access token: from expires_in, else the access token's `exp`.
	Expiry time.Time
	// Scopes granted: the response's `scope`, else the access token's `scp`, else nil.
	Scopes []string
	// Region from the access token's `ou_code`, lower-cased ("na", "eu", "cn"); "" if unknown.
	Region string
	// ProviderTime is the provider's clock when it answered (its Date
	// header); zero when it sent none.
	ProviderTime time.Time
}

// Exchange redeems an authorization code (with the PKCE verifier and `audience`; "" →
// the default audience, see SendsAudience). It does not retry: codes are single use. The
// ID token is returned unverified; call VerifyExchangedIDToken.
func (c *Client) Exchange(ctx context.Context, code, verifier, audience string) (*Tokens, error) {
	const op = "exchange"
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	if audience == "" && c.SendsAudience() {
		audience = c.cfg.Audience
	}
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", audience))
	}
	if err := c.spendTokenBudget(op); err != nil {
		return nil, err
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.http)
	tok, err := s.oauth.Exchange(octx, code, opts...)
	if err != nil {
		return nil, c.mapOAuthError(op, err)
	}
	t := &Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	if v, ok := tok.Extra("id_token").(string); ok {
		t.IDToken = v
	}
	scope, _ := tok.Extra("scope").(string)
	c.fillFromAccessToken(t, scope)
	return t, nil
}

// spendTokenBudget takes one call from the token endpoint budget, or says when to retry.
func (c *Client) spendTokenBudget(op string) error {
	ok, wait := c.tokenBudget.Allow()
	if ok {
		return nil
	}
	wait = (wait + time.Second - 1).Truncate(time.Second) // whole seconds, rounded up, for Retry-After
	return &Error{Kind: KindTransient, Op: op, RetryAfter: wait, Err: ErrTokenBudget}
}

// mapOAuthError turns an error of x/oauth2 into an *Error without copying response bodies.
func (c *Client) mapOAuthError(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		var h http.Header
		if re.Response != nil {
			status, h = re.Response.StatusCode, re.Response.Header
		}
		e := classifyHTTP(op, status, re.ErrorCode, h, c.clock())
		if e.Kind == KindUnknown && status == http.StatusUnauthorized {
			e.Kind = KindConfig // 401 without a code: client authentication failed
		}
		return e
	}
	msg := err.Error()
	if strings.Contains(msg, "server response missing access_token") || strings.Contains(msg, "cannot parse") {
		return &Error{Kind: KindInvalid, Op: op, Err: errors.New("token response is malformed")}
	}
	return transportError(op, errors.New(redactOAuthErr(err)))
}

// redactOAuthErr keeps x/oauth2's message for transport errors (they name the URL and the
// cause, never a token) but drops anything after a "Response:" body dump.
func redactOAuthErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "Response:"); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return msg
}

// Refresh redeems a refresh token (grant_type=refresh_token, client_id, refresh_token;
// client_secret too when the provider is not Tesla). If the answer carries an ID token, it
// is verified (signature, aud, exp, sub, iat) and its iss and sub must equal prevIss and
// prevSub (OIDC Core 12.2; an empty prev value is not compared). Transient failures (5xx,
// 429, network) are retried with backoff and jitter, honouring Retry-After, at most
// Config.MaxAttempts times and within ctx's deadline. login_required / invalid_grant
// (KindReauth) and unauthorized_client (KindConfig) are never retried.
func (c *Client) Refresh(ctx context.Context, refreshToken, prevIss, prevSub string) (*Tokens, error) {
	const op = "refresh"
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.cfg.ClientID},
		"refresh_token": {refreshToken},
	}
	if !s.tesla && c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret) // moved to the header for client_secret_basic
	}
	t, err := c.tokenRequest(ctx, op, s, form)
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" && !s.tesla {
		// RFC 6749 section 6: a provider that issues no new refresh token leaves the old one valid.
		t.RefreshToken = refreshToken
	}
	if t.IDToken != "" {
		claims, err := c.verifyIDToken(ctx, op, t.IDToken, t.ProviderTime)
		if err != nil {
			return nil, err
		}
		if prevIss != "" && claims.Issuer != prevIss {
			return nil, &Error{Kind: KindInvalid, Op: op, Err: fmt.Errorf("%w: refreshed id token has another issuer", ErrIssuerMismatch)}
		}
		if prevSub != "" && claims.Subject != prevSub {
			return nil, &Error{Kind: KindInvalid, Op: op, Err: fmt.Errorf("%w: refreshed id token names another subject", ErrSubMismatch)}
		}
	}
	return t, nil
}

// PartnerToken obtains a partner token: the client-credentials grant at the token
// endpoint, for the Fleet API base URL audience. A public client gets ErrPublicClient
// (KindConfig) without a request.
func (c *Client) PartnerToken(ctx context.Context, audience string) (*Tokens, error) {
	const op = "partner token"
	if c.PublicClient() {
		return nil, &Error{Kind: KindConfig, Op: op, Err: ErrPublicClient}
	}
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"scope":         {c.cfg.PartnerScopes},
		"audience":      {audience},
	}
	return c.tokenRequest(ctx, op, s, form)
}

// IsTesla reports whether the discovery URL is Tesla's own: whether this client's access
// tokens are Tesla's.
func (c *Client) IsTesla() bool {
	u, err := url.Parse(c.cfg.DiscoveryURL)
	return err == nil && teslaHosts[strings.ToLower(u.Hostname())]
}

// tokenResponse is the token endpoint's JSON (success or error).
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	IDToken      string          `json:"id_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	Scope        string          `json:"scope"`
	Error        string          `json:"error"`
}

// SendsAudience reports whether the code exchange sends `audience` by default: always
// for Tesla's hosts, and for any other provider only when Config.Audience was set
// explicitly (standard providers such as Auth0 reject audiences they do not know).
func (c *Client) SendsAudience() bool { return c.audienceSet || c.IsTesla() }

// clientAuth applies the token endpoint client authentication of s to form: for
// client_secret_basic the credentials leave the form for an Authorization header
// (RFC 6749 section 2.3.1, form-urlencoded then Basic); otherwise "" is returned.
func (c *Client) clientAuth(s *state, form url.Values) (authorization string) {
	if s.authStyle != oauth2.AuthStyleInHeader || c.cfg.ClientSecret == "" {
		return ""
	}
	form.Del("client_secret")
	form.Del("client_id")
	creds := url.QueryEscape(c.cfg.ClientID) + ":" + url.QueryEscape(c.cfg.ClientSecret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(creds))
}

// tokenRequest POSTs form to the token endpoint of s, authenticating the client as s
// says, with bounded retries of transient failures.
func (c *Client) tokenRequest(ctx context.Context, op string, s *state, form url.Values) (*Tokens, error) {
	form = maps.Clone(form)
	authorization := c.clientAuth(s, form)
	body := form.Encode()
	var last error
	for attempt := 1; ; attempt++ {
		if err := c.spendTokenBudget(op); err != nil {
			if last != nil {
				return nil, last // the budget ends the retries; report what Tesla said
			}
			return nil, err
		}
		t, err := c.tokenOnce(ctx, op, s.tokenURL, authorization, body)
		if err == nil {
			return t, nil
		}
		last = err
		if KindOf(err) != KindTransient || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
			return nil, err
		}
		d := RetryAfterOf(err)
		if d <= 0 {
			d = backoff(c.retryBase, c.retryMax, attempt)
		}
		if dl, ok := ctx.Deadline(); ok && c.clock().Add(d).After(dl) {
			c.log.WarnContext(ctx, "oidc token request: no time left for a retry", "op", op, "attempt", attempt, "wait", d)
			return nil, last
		}
		c.log.WarnContext(ctx, "oidc token request failed; retrying", "op", op, "attempt", attempt, "retry_in", d, "err", err)
		if err := c.sleep(ctx, d); err != nil {
			return nil, last
		}
	}
}

func (c *Client) tokenOnce(ctx context.Context, op, tokenURL, authorization, body string) (*Tokens, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("bad token URL")}
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, transportError(op, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(bytes.TrimSpace(raw), &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := classifyHTTP(op, resp.StatusCode, tr.Error, resp.Header, c.clock())
		if e.Kind == KindUnknown && resp.StatusCode == http.StatusUnauthorized {
			e.Kind = KindConfig
		}
		return nil, e
	}
	if jsonErr != nil {
		return nil, &Error{Kind: KindInvalid, Op: op, Status: resp.StatusCode, Err: errors.New("token response is not JSON")}
	}
	if tr.Error != "" {
		return nil, classifyHTTP(op, resp.StatusCode, tr.Error, resp.Header, c.clock())
	}
	if tr.AccessToken == "" {
		return nil, &Error{Kind: KindInvalid, Op: op, Status: resp.StatusCode, Err: errors.New("token response has no access_token")}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, &Error{Kind: KindInvalid, Op: op, Err: fmt.Errorf("unexpected token_type %q", sanitizeCode(tr.TokenType))}
	}
	t := &Tokens{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, IDToken: tr.IDToken}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		t.ProviderTime = d
	}
	if secs := parseExpiresIn(tr.ExpiresIn); secs > 0 {
		t.Expiry = c.now().Add(time.Duration(secs) * time.Second)
	}
	c.fillFromAccessToken(t, tr.Scope)
	return t, nil
}

// parseExpiresIn accepts a JSON number or a numeric string.
func parseExpiresIn(raw json.RawMessage) int64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f)
	}
	return 0
}

// accessClaims are the parts of Tesla's access token JWT we read (unverified: it came
// straight from the token endpoint over TLS).
type accessClaims struct {
	Scp    json.RawMessage `json:"scp"`
	Scope  json.RawMessage `json:"scope"` // standard providers' JWT access tokens (RFC 9068)
	OUCode string          `json:"ou_code"`
	Exp    json.Number     `json:"exp"`
}

// fillFromAccessToken sets Scopes (from scope, else the JWT's scp or scope claim; nil
// for an opaque token), Region (ou_code) and, when missing, Expiry (exp). An access
// token that is not a JWT (or not JSON inside) is fine: standard providers issue opaque ones.
func (c *Client) fillFromAccessToken(t *Tokens, scope string) {
	if f := strings.Fields(scope); len(f) > 0 {
		t.Scopes = f
	}
	var ac accessClaims
	if err := unverifiedClaims(t.AccessToken, &ac); err != nil {
		return // opaque access token (standard providers)
	}
	if t.Scopes == nil {
		t.Scopes = parseScp(ac.Scp)
	}
	if t.Scopes == nil {
		t.Scopes = parseScp(ac.Scope)
	}
	t.Region = strings.ToLower(strings.TrimSpace(ac.OUCode))
	if t.Expiry.IsZero() {
		if n, err := ac.Exp.Int64(); err == nil && n > 0 {
			t.Expiry = time.Unix(n, 0)
		}
	}
}

// parseScp reads `scp` as a JSON array of strings or a space-separated string.
func parseScp(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		if len(list) == 0 {
			return nil
		}
		return list
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if f := strings.Fields(s); len(f) > 0 {
			return f
		}
	}
	return nil
}
