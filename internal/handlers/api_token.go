package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/link"
)

// tokenRequest is the optional body of POST /api/v1/links/{id}/token.
type tokenRequest struct {
	ForceRefresh bool     `json:"force_refresh"`
	Scopes       []string `json:"scopes"`
}

// tokenResponse is a valid access token for a link.
type tokenResponse struct {
	AccessToken     string    `json:"access_token"`
	TokenType       string    `json:"token_type"`
	ExpiresAt       time.Time `json:"expires_at"`
	Scopes          []string  `json:"scopes"`
	Region          string    `json:"region"`
	FleetAPIBaseURL string    `json:"fleet_api_base_url"`
	LinkID          string    `json:"link_id"`
}

const maxTokenRequestBody = 16 << 10

// apiToken hands out a valid access token for the link (read with the key
// by the middleware). When no refresh is needed this costs no database call
// beyond the middleware's one. Each token handed out is attributed to the
// API client in memory (usage.Recorder batches the writes).
func (s *Server) apiToken(c echo.Context) error {
	client, l := apiClientOf(c), apiLinkOf(c)
	in, err := readTokenRequest(c.Request())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tok, err := s.links.AccessTokenFor(ctx, l, link.TokenRequest{ForceRefresh: in.ForceRefresh, Scopes: in.Scopes})
	if err != nil || tok.Link != l {
		s.forget(l.ID) // refreshed, revoked or flagged meanwhile
	}
	if err != nil {
		return err
	}
	if s.usage != nil {
		s.usage.Record(l.ID, client.ID, s.now())
	}
	// One log line per request: the access log carries who got which link's token (never the token).
	logAttrs(c, slog.String("event", "token issued"), slog.String("link_id", l.ID), slog.String("api_client", client.Name))
	// Cache-Control: no-store is set for every /api/ answer by securityHeaders.
	scopes := tok.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	out := tokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresAt: tok.ExpiresAt.UTC(),
		Scopes: scopes, Region: tok.Region, FleetAPIBaseURL: tok.FleetAPIBaseURL, LinkID: l.ID}
	return c.JSONBlob(http.StatusOK, appendTokenJSON(make([]byte, 0, 256+len(out.AccessToken)), &out))
}

// readTokenRequest parses the optional JSON body; an empty body means defaults.
func readTokenRequest(r *http.Request) (tokenRequest, error) {
	var in tokenRequest
	if r.Body == nil || r.ContentLength == 0 {
		return in, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxTokenRequestBody+1))
	if err != nil {
		return in, badRequest("The request body could not be read.")
	}
	if len(raw) > maxTokenRequestBody {
		return in, apperr.New(apperr.TooLarge, errors.New("token request body too large"))
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return in, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return in, badRequest(`The body must be a JSON object such as {"force_refresh": false, "scopes": ["vehicle_device_data"]}.`)
	}
	return in, nil
}
