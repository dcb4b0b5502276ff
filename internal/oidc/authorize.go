package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// AuthRequest describes one authorization request.
type AuthRequest struct {
	// State, Nonce and Verifier are fresh CSPRNG values of this login transaction
	// (Verifier: 43-128 characters of RFC 7636's unreserved set).
	State, Nonce, Verifier string
	// Scopes requested; sent space-separated.
	Scopes []string
	// Locale, e.g. "en-US" ("" → not sent).
	Locale string
	// PromptMissingScopes asks Tesla to prompt for scopes not granted yet.
	PromptMissingScopes bool
}

// AuthCodeURL returns the authorization endpoint URL for r, with PKCE S256.
func (c *Client) AuthCodeURL(ctx context.Context, r AuthRequest) (string, error) {
	const op = "authorize"
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return "", err
	}
	switch {
	case r.State == "":
		return "", &Error{Kind: KindConfig, Op: op, Err: errors.New("empty state")}
	case r.Nonce == "":
		return "", &Error{Kind: KindConfig, Op: op, Err: errors.New("empty nonce")}
	case !validVerifier(r.Verifier):
		return "", &Error{Kind: KindConfig, Op: op, Err: errors.New("PKCE verifier must be 43-128 unreserved characters")}
	case len(r.Scopes) == 0:
		return "", &Error{Kind: KindConfig, Op: op, Err: errors.New("no scopes")}
	}
	cfg := *s.oauth
	cfg.Scopes = r.Scopes
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("nonce", r.Nonce),
		oauth2.S256ChallengeOption(r.Verifier),
	}
	if r.PromptMissingScopes {
		opts = append(opts, oauth2.SetAuthURLParam("prompt_missing_scopes", "true"))
	}
	if r.Locale != "" {
		opts = append(opts, oauth2.SetAuthURLParam("locale", r.Locale))
	}
	return cfg.AuthCodeURL(r.State, opts...), nil
}

// validVerifier checks RFC 7636 section 4.1.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return true
}

// CheckCallbackIssuer is the mix-up defence on the callback query q: Tesla's `issuer`
// parameter, when present, must equal the expected callback issuer; RFC 9207's `iss`, when
// present, must equal the discovered issuer. Neither present is accepted.
func (c *Client) CheckCallbackIssuer(q url.Values) error {
	const op = "callback issuer"
	s := c.st.Load()
	if s == nil {
		return &Error{Kind: KindTransient, Op: op, Err: ErrNotReady}
	}
	check := func(param, want string) error {
		vs, ok := q[param]
		if !ok {
			return nil
		}
		if len(vs) != 1 || vs[0] != want {
			return &Error{Kind: KindInvalid, Op: op, Err: fmt.Errorf("%w: callback parameter %q is not the expected issuer", ErrIssuerMismatch, param)}
		}
		return nil
	}
	if err := check("issuer", s.callbackIssuer); err != nil {
		return err
	}
	return check("iss", s.meta.Issuer)
}

// CallbackIssuer returns the expected `issuer` callback parameter ("" before discovery).
func (c *Client) CallbackIssuer() string {
	if s := c.st.Load(); s != nil {
		return s.callbackIssuer
	}
	return ""
}

// RevokeConsentURL returns Tesla's consent-revocation page for this client:
// <scheme://host of the authorization endpoint>/user/revoke/consent?revoke_client_id=..&back_url=..
// Before discovery it uses https://auth.tesla.com.
func (c *Client) RevokeConsentURL(backURL string) string {
	base := defaultRevokeHost
	if s := c.st.Load(); s != nil {
		if u, err := url.Parse(s.meta.AuthorizationEndpoint); err == nil && u.Host != "" {
			base = u.Scheme + "://" + u.Host
		}
	}
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("/user/revoke/consent?revoke_client_id=")
	b.WriteString(url.QueryEscape(c.cfg.ClientID))
	if backURL != "" {
		b.WriteString("&back_url=")
		b.WriteString(url.QueryEscape(backURL))
	}
	return b.String()
}
