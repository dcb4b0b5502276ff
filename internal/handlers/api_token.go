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

	"teslalink/internal/apikey"
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

// apiToken hands out a valid access token for the link: one call to the
// link service authorises the key and the link and serves the token (from
// its cache when it can). The body is read only once the caller is
// authorised. Each token handed out is attributed to the API client in
// memory (usage.Recorder batches the writes).
func (s *Server) apiToken(c echo.Context) error {
	key, err := bearerKey(c)
	if err != nil {
		s.countToken("", err)
		return err
	}
	req := c.Request()
	in := link.IssueRequest{LinkID: c.Param("id"), Admit: s.admitAPIClient, Read: func() (link.TokenRequest, error) {
		if err := checkQuery(req.URL.RawQuery); err != nil {
			return link.TokenRequest{}, err
		}
		body, err := readTokenRequest(req)
		return link.TokenRequest{ForceRefresh: body.ForceRefresh, Scopes: body.Scopes}, err
	}}
	copy(in.KeyHash[:], apikey.Hash(key))
	tok, err := s.links.IssueToken(req.Context(), in)
	if s.usage != nil && tok.ClientID != 0 { // the key was accepted
		s.usage.RecordKey(in.KeyHash[:], s.now())
	}
	s.countToken(tok.ClientName, err) // ClientName is "" until the key holds tokens:issue
	if err != nil {
		challenge(c, err, apikey.ScopeTokensIssue)
		return err
	}
	if s.usage != nil && tok.RecordUse {
		s.usage.Record(tok.LinkID, tok.ClientID, s.now())
	}
	// One log line per request: the access log carries who got which link's token (never the token).
	logAttrs(c, slog.String("event", "token issued"), slog.String("link_id", tok.LinkID), slog.String("api_client", tok.ClientName))
	// Cache-Control: no-store is set for every /api/ answer by securityHeaders.
	scopes := tok.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	out := tokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresAt: tok.ExpiresAt.UTC(),
		Scopes: scopes, Region: tok.Region, FleetAPIBaseURL: tok.FleetAPIBaseURL, LinkID: tok.LinkID}
	return c.JSONBlob(http.StatusOK, appendTokenJSON(make([]byte, 0, 256+len(out.AccessToken)), &out))
}

// countToken counts a token request by API client and outcome: "ok", or
// the problem type the caller gets. It adds no allocation on success.
func (s *Server) countToken(client string, err error) {
	if s.metrics == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = string(classify(err).code)
	}
	s.metrics.TokenRequest(client, outcome)
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
	if err := dec.Decode(&in); err != nil || !atEOF(dec) {
		return in, badRequest(`The body must be a JSON object such as {"force_refresh": false, "scopes": ["vehicle_device_data"]}.`)
	}
	return in, nil
}

// atEOF reports whether nothing but white space follows the decoded value.
// dec.More alone is not enough: it says false before a stray '}' or ']'.
func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err == io.EOF
}
