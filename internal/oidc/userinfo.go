package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// UserInfo is the provider's userinfo answer.
type UserInfo struct {
	Subject, Email, Name string
}

// UserInfo fetches the userinfo endpoint with the access token; its `sub` must equal
// wantSub (from the verified ID token), else ErrSubMismatch (KindInvalid).
func (c *Client) UserInfo(ctx context.Context, accessToken, wantSub string) (*UserInfo, error) {
	const op = "userinfo"
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	if s.meta.UserinfoEndpoint == "" {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("provider has no userinfo_endpoint")}
	}
	body, err := c.getJSON(ctx, op, s.meta.UserinfoEndpoint, accessToken)
	if err != nil {
		return nil, err
	}
	var ui struct {
		Sub   string `json:"sub"`
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := json.Unmarshal(body, &ui); err != nil {
		return nil, &Error{Kind: KindInvalid, Op: op, Err: errors.New("userinfo is not a JSON object")}
	}
	if wantSub == "" || ui.Sub != wantSub {
		return nil, &Error{Kind: KindInvalid, Op: op, Err: ErrSubMismatch}
	}
	return &UserInfo{Subject: ui.Sub, Email: ui.Email, Name: ui.Name}, nil
}

// HasUserInfo reports whether the discovered metadata names a userinfo_endpoint.
func (c *Client) HasUserInfo() bool {
	s := c.st.Load()
	return s != nil && s.meta.UserinfoEndpoint != ""
}

// Profile returns the owner's email and name for the verified ID token claims: from the
// userinfo endpoint when the provider has one (its `sub` must equal claims.Subject;
// fields it leaves empty are taken from the ID token), else from the ID token's `email`
// and `name` / `preferred_username` claims (userinfo is optional in OpenID discovery).
func (c *Client) Profile(ctx context.Context, accessToken string, claims *IDClaims) (*UserInfo, error) {
	const op = "userinfo"
	if claims == nil || claims.Subject == "" {
		return nil, &Error{Kind: KindInvalid, Op: op, Err: ErrSubMismatch}
	}
	s, err := c.ensureReady(ctx, op)
	if err != nil {
		return nil, err
	}
	if s.meta.UserinfoEndpoint == "" {
		return &UserInfo{Subject: claims.Subject, Email: claims.Email, Name: claims.Name}, nil
	}
	ui, err := c.UserInfo(ctx, accessToken, claims.Subject)
	if err != nil {
		return nil, err
	}
	if ui.Email == "" {
		ui.Email = claims.Email
	}
	if ui.Name == "" {
		ui.Name = claims.Name
	}
	return ui, nil
}

// getJSON performs one bearer-authenticated GET and returns the 2xx body.
func (c *Client) getJSON(ctx context.Context, op, rawURL, bearer string) ([]byte, error) {
	if _, err := url.Parse(rawURL); err != nil || !absURL(rawURL) {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("bad URL")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("bad request")}
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, transportError(op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, ResourceError(op, resp.StatusCode, body, resp.Header, c.clock())
	}
	return body, nil
}
