package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"teslalink/internal/oidc"
)

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
			return nil, &oidc.Error{Kind: oidc.KindInvalid, Op: op, Err: errors.New("vehicles answer is malformed")}
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
		return "", "", &oidc.Error{Kind: oidc.KindInvalid, Op: op, Err: errors.New("region answer is malformed")}
	}
	region = strings.ToLower(r.Response.Region)
	fleetBaseURL = strings.TrimRight(r.Response.FleetAPIBaseURL, "/")
	if fleetBaseURL != "" && (!absURL(fleetBaseURL) || (strings.HasPrefix(baseURL, "https://") && !strings.HasPrefix(fleetBaseURL, "https://"))) {
		return "", "", &oidc.Error{Kind: oidc.KindInvalid, Op: op, Err: errors.New("region answer has a bad base URL")}
	}
	if fleetBaseURL == "" {
		fleetBaseURL, _ = c.RegionBaseURL(region)
	}
	return region, fleetBaseURL, nil
}

// RegisterPartner registers this app's domain in the region served by baseURL: a partner
// token from Config.Auth (client credentials, audience = baseURL), then POST
// {baseURL}/api/1/partner_accounts {"domain": domain}. It returns Tesla's JSON answer.
func (c *Client) RegisterPartner(ctx context.Context, baseURL, domain string) (json.RawMessage, error) {
	const op = "register partner"
	if domain == "" || strings.ContainsAny(domain, "/:@ ") {
		return nil, &oidc.Error{Kind: oidc.KindConfig, Op: op, Err: errors.New("domain must be a bare host name")}
	}
	if c.auth == nil {
		return nil, &oidc.Error{Kind: oidc.KindConfig, Op: op, Err: errors.New("no authorization server client to issue a partner token")}
	}
	baseURL = strings.TrimRight(baseURL, "/")
	tok, err := c.auth.PartnerToken(ctx, baseURL)
	if err != nil {
		return nil, err
	}
	body, err := c.doJSON(ctx, op, http.MethodPost, baseURL+"/api/1/partner_accounts", tok.AccessToken, map[string]string{"domain": domain})
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, &oidc.Error{Kind: oidc.KindInvalid, Op: op, Err: errors.New("answer is not JSON")}
	}
	return json.RawMessage(body), nil
}
