package oidc

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
	"strconv"
	"strings"
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
	body, err := c.doJSON(ctx, op, http.MethodGet, s.meta.UserinfoEndpoint, accessToken, nil)
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

// FleetRegionLookup reports whether GET /api/1/users/region is worth asking when the
// access token names no region: true for Tesla's own hosts and whenever the Fleet API
// base URLs were configured (the simulator, a test double); false for a standard OpenID
// provider with Tesla's default Fleet URLs, whose tokens Tesla would not accept anyway.
func (c *Client) FleetRegionLookup() bool {
	if c.isTesla() {
		return true
	}
	return !maps.Equal(c.regions, DefaultRegionBaseURLs())
}

// Vehicle is one entry of GET /api/1/vehicles.
type Vehicle struct {
	ID          int64  `json:"id"`
	VehicleID   int64  `json:"vehicle_id"`
	VIN         string `json:"vin"`
	DisplayName string `json:"display_name"`
	State       string `json:"state"`
}

// maxVehiclePages bounds the pagination of Vehicles.
const maxVehiclePages = 20

// Vehicles lists the owner's vehicles (all pages) from the Fleet API at baseURL.
// 403 → KindForbidden, 412 → KindNotRegistered, 421 → KindRegion, 429/5xx → KindTransient.
func (c *Client) Vehicles(ctx context.Context, baseURL, accessToken string) ([]Vehicle, error) {
	const op = "vehicles"
	var all []Vehicle
	for page := 1; page <= maxVehiclePages; page++ {
		u := strings.TrimRight(baseURL, "/") + "/api/1/vehicles?page=" + strconv.Itoa(page) + "&per_page=100"
		body, err := c.doJSON(ctx, op, http.MethodGet, u, accessToken, nil)
		if err != nil {
			return nil, err
		}
		var r struct {
			Response   []Vehicle `json:"response"`
			Pagination *struct {
				Next json.RawMessage `json:"next"`
			} `json:"pagination"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, &Error{Kind: KindInvalid, Op: op, Err: errors.New("vehicles answer is malformed")}
		}
		all = append(all, r.Response...)
		if r.Pagination == nil || len(r.Response) == 0 || (r.Count > 0 && len(all) >= r.Count) {
			break
		}
		next := strings.TrimSpace(string(r.Pagination.Next))
		if next == "" || next == "null" {
			break
		}
	}
	if all == nil {
		all = []Vehicle{}
	}
	return all, nil
}

// UserRegion asks GET /api/1/users/region which region and Fleet API base URL serve the
// owner. region is lower-case ("na", "eu", "cn").
func (c *Client) UserRegion(ctx context.Context, baseURL, accessToken string) (region, fleetBaseURL string, err error) {
	const op = "user region"
	body, err := c.doJSON(ctx, op, http.MethodGet, strings.TrimRight(baseURL, "/")+"/api/1/users/region", accessToken, nil)
	if err != nil {
		return "", "", err
	}
	var r struct {
		Response struct {
			Region          string `json:"region"`
			FleetAPIBaseURL string `json:"fleet_api_base_url"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Response.Region == "" {
		return "", "", &Error{Kind: KindInvalid, Op: op, Err: errors.New("region answer is malformed")}
	}
	region = strings.ToLower(r.Response.Region)
	fleetBaseURL = strings.TrimRight(r.Response.FleetAPIBaseURL, "/")
	if fleetBaseURL != "" && (!absURL(fleetBaseURL) || (strings.HasPrefix(baseURL, "https://") && !strings.HasPrefix(fleetBaseURL, "https://"))) {
		return "", "", &Error{Kind: KindInvalid, Op: op, Err: errors.New("region answer has a bad base URL")}
	}
	if fleetBaseURL == "" {
		fleetBaseURL, _ = c.RegionBaseURL(region)
	}
	return region, fleetBaseURL, nil
}

// RegisterPartner registers this app's domain in the region served by baseURL: a
// client_credentials partner token (audience = baseURL), then POST
// {baseURL}/api/1/partner_accounts {"domain": domain}. It returns Tesla's JSON answer.
func (c *Client) RegisterPartner(ctx context.Context, baseURL, domain string) (json.RawMessage, error) {
	const op = "register partner"
	if domain == "" || strings.ContainsAny(domain, "/:@ ") {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("domain must be a bare host name")}
	}
	baseURL = strings.TrimRight(baseURL, "/")
	tok, err := c.partnerToken(ctx, baseURL)
	if err != nil {
		return nil, err
	}
	body, err := c.doJSON(ctx, op, http.MethodPost, baseURL+"/api/1/partner_accounts", tok.AccessToken, map[string]string{"domain": domain})
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, &Error{Kind: KindInvalid, Op: op, Err: errors.New("answer is not JSON")}
	}
	return json.RawMessage(body), nil
}

// doJSON performs one bearer-authenticated JSON request and returns the 2xx body.
func (c *Client) doJSON(ctx context.Context, op, method, rawURL, bearer string, in any) ([]byte, error) {
	if _, err := url.Parse(rawURL); err != nil || !absURL(rawURL) {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("bad URL")}
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, &Error{Kind: KindUnknown, Op: op, Err: fmt.Errorf("encode request: %w", err)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: op, Err: errors.New("bad request")}
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
		return nil, transportError(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, transportError(op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &eb)
		e := classifyHTTP(op, resp.StatusCode, eb.Error, resp.Header, c.clock())
		// Fleet API statuses take precedence over free-text error fields.
		if k := kindForStatus(resp.StatusCode); k != KindUnknown {
			e.Kind = k
		}
		return nil, e
	}
	return body, nil
}
