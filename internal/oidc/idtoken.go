package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// maxIatSkew is how far in the future an `iat` may be, on the provider's
// clock (see providerNow).
const maxIatSkew = 5 * time.Minute

// IDClaims are the verified claims of an ID token.
type IDClaims struct {
	Subject, Issuer  string
	IssuedAt, Expiry time.Time
	Nonce            string
	// Email and Name are the token's `email` and `name` (else `preferred_username`)
	// claims when present; Tesla's ID tokens carry neither (see Profile).
	Email, Name string
}

// VerifyIDToken verifies an ID token from the code exchange: signature (RS256 for Tesla;
// a standard provider's advertised asymmetric algorithms, never none or HS*) with a key of
// the provider's JWKS, `iss` one of the accepted issuers, `aud` containing the client id,
// `exp`, `sub` and `iat` present (iat at most 5 minutes in the future), and `nonce` equal
// to nonce (an empty expected nonce never matches).
func (c *Client) VerifyIDToken(ctx context.Context, raw, nonce string) (*IDClaims, error) {
	return c.verifyWithNonce(ctx, raw, nonce, time.Time{})
}

// VerifyExchangedIDToken is VerifyIDToken for the ID token of t, a code
// exchange's answer: its `iat` is checked against the provider's clock at
// that answer (t.ProviderTime), see providerNow.
func (c *Client) VerifyExchangedIDToken(ctx context.Context, t *Tokens, nonce string) (*IDClaims, error) {
	return c.verifyWithNonce(ctx, t.IDToken, nonce, t.ProviderTime)
}

func (c *Client) verifyWithNonce(ctx context.Context, raw, nonce string, providerTime time.Time) (*IDClaims, error) {
	claims, err := c.verifyIDToken(ctx, "verify id token", raw, providerTime)
	if err != nil {
		return nil, err
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(nonce), []byte(claims.Nonce)) != 1 {
		return nil, invalidToken("verify id token", errors.New("nonce mismatch"))
	}
	return claims, nil
}

// verifyIDToken does every check except the nonce. providerTime is the
// provider's clock when it answered (zero: unknown).
func (c *Client) verifyIDToken(ctx context.Context, op, raw string, providerTime time.Time) (*IDClaims, error) {
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		return nil, invalidToken(op, errors.New("no id token"))
	}
	var peek struct {
		Issuer string `json:"iss"`
	}
	if err := unverifiedClaims(raw, &peek); err != nil {
		return nil, invalidToken(op, err)
	}
	v, ok := s.verifiers[peek.Issuer]
	if !ok {
		return nil, invalidToken(op, fmt.Errorf("%w: id token issuer is not accepted", ErrIssuerMismatch))
	}
	tok, err := v.Verify(gooidc.ClientContext(ctx, c.http), raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, invalidToken(op, errors.New("id token expired"))
		}
		return nil, invalidToken(op, err)
	}
	if tok.Subject == "" {
		return nil, invalidToken(op, errors.New("id token has no sub"))
	}
	if tok.IssuedAt.IsZero() {
		return nil, invalidToken(op, errors.New("id token has no iat"))
	}
	if tok.IssuedAt.After(c.providerNow(providerTime).Add(maxIatSkew)) {
		return nil, invalidToken(op, errors.New("id token iat is in the future"))
	}
	var extra struct {
		Azp               string `json:"azp"`
		Email             any    `json:"email"`
		Name              any    `json:"name"`
		PreferredUsername any    `json:"preferred_username"`
	}
	if err := tok.Claims(&extra); err != nil {
		return nil, invalidToken(op, err)
	}
	if len(tok.Audience) > 1 && extra.Azp != "" && extra.Azp != c.cfg.ClientID {
		return nil, invalidToken(op, errors.New("id token azp is not our client"))
	}
	name := claimString(extra.Name)
	if name == "" {
		name = claimString(extra.PreferredUsername)
	}
	return &IDClaims{
		Subject:  tok.Subject,
		Issuer:   tok.Issuer,
		IssuedAt: tok.IssuedAt,
		Expiry:   tok.Expiry,
		Nonce:    tok.Nonce,
		Email:    claimString(extra.Email),
		Name:     name,
	}, nil
}

// claimString returns v when it is a string (claims of other types are ignored).
func claimString(v any) string {
	s, _ := v.(string)
	return strings.TrimSpace(s)
}

func invalidToken(op string, err error) *Error {
	return &Error{Kind: KindInvalid, Op: op, Err: err}
}

// unverifiedClaims decodes a JWT's payload without verifying it. Only for values that are
// verified afterwards or that came straight from the token endpoint over TLS.
func unverifiedClaims(raw string, out any) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("token is not a compact JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return errors.New("token payload is not base64url")
	}
	if err := json.Unmarshal(payload, out); err != nil {
		return errors.New("token payload is not a JSON object")
	}
	return nil
}

// providerNow is the time an ID token's `iat` is compared with. The `iat`
// is the provider's own statement of when it issued the token, so it is
// checked against the provider's clock: the Date header of the token
// response that carried it, when the provider's clock is ahead of ours.
// Otherwise (no Date header, or the provider's clock is behind) our clock.
// Expiry (`exp`) is always checked against our clock. This keeps a provider
// whose clock runs ahead (the simulator after its clock was advanced) from
// failing every login and refresh with "iat in the future", and still
// refuses an ID token issued after the answer that carries it.
func (c *Client) providerNow(providerTime time.Time) time.Time {
	now := c.now()
	if providerTime.After(now) {
		return providerTime
	}
	return now
}
