package handlers

import (
	_ "embed"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apikey"
	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/tokencache"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the API's OpenAPI 3.1 document (served at /api/openapi.yaml).
func OpenAPI() []byte { return openapiYAML }

// apiRoutes registers the token broker API. Every /api/v1 route needs an API
// key with the route's scope; link ids are canonicalised before anything
// reads them, and unknown query parameters are refused; errors are RFC 9457
// problems.
func (s *Server) apiRoutes(g *echo.Group) {
	g.GET("/openapi.yaml", s.openapiDoc)
	v1 := g.Group("/v1")
	v1.GET("/links", s.apiListLinks, s.apiKey(apikey.ScopeLinksRead, false),
		allowQuery("status", "owner_sub", "external_ref", "cursor", "limit"))
	v1.GET("/links/:id", s.apiGetLink, canonicalLinkID, s.apiKey(apikey.ScopeLinksRead, true), allowQuery())
	v1.POST("/links/:id/token", s.apiToken, s.countToken, canonicalLinkID, s.apiKey(apikey.ScopeTokensIssue, true), allowQuery())
	v1.DELETE("/links/:id", s.apiDeleteLink, canonicalLinkID, s.apiKey(apikey.ScopeLinksDelete, false), allowQuery())
	v1.DELETE("/owners/:sub", s.apiEraseOwner, s.apiKey(apikey.ScopeOwnersErase, false), allowQuery())
	v1.POST("/link-sessions", s.apiCreateLinkSession, s.apiKey(apikey.ScopeLinksCreate, false), s.linkSessionsOn, allowQuery())
	v1.POST("/link-sessions/:id/claim", s.apiClaimLinkSession, s.apiKey(apikey.ScopeLinksCreate, false), s.linkSessionsOn, allowQuery())
}

// linkSessionsOn answers 404 when this server runs without link sessions.
func (s *Server) linkSessionsOn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.linkSessions == nil {
			return echo.ErrNotFound
		}
		return next(c)
	}
}

// countToken counts each token request by API client and outcome: "ok",
// or the problem type the caller gets. It adds no allocation on success.
func (s *Server) countToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if s.metrics == nil {
			return err
		}
		name := ""
		if client := apiClientOf(c); client != nil {
			name = client.Name
		}
		outcome := "ok"
		if err != nil {
			outcome = string(classify(err).code)
		}
		s.metrics.TokenRequest(name, outcome)
		return err
	}
}

func (s *Server) openapiDoc(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openapiYAML)
}

const (
	ctxAPIClient = "api_client"
	ctxAPILink   = "api_link"
	apiRealm     = `Bearer realm="teslalink"`
)

var errAPIKeyMissing = apperr.Newf(apperr.Unauthenticated, "Send an API key as 'Authorization: Bearer tlk_...'.",
	errors.New("no bearer api key"))

var errAPIKeyInvalid = apperr.New(apperr.Unauthenticated, errors.New("unknown or revoked api key"))

// apiKey authenticates the request's bearer key and checks that it holds
// scope. With withLink, the link named by :id is read in the same database
// round trip and a missing link answers 404 (only after the key passed).
// On the token route the client and link may come from the token cache,
// which every revocation evicts on every instance within milliseconds.
func (s *Server) apiKey(scope string, withLink bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			key, ok := bearer(c.Request())
			if !ok {
				h.Set("WWW-Authenticate", apiRealm)
				return errAPIKeyMissing
			}
			if !apikey.WellFormed(key) {
				h.Set("WWW-Authenticate", apiRealm+`, error="invalid_token"`)
				return errAPIKeyInvalid
			}
			linkID := ""
			if withLink {
				linkID = c.Param("id")
			}
			// Only the token route may use the cache's partial link (hot fields only).
			client, l, err := s.authenticate(c, key, linkID, scope == apikey.ScopeTokensIssue)
			if errors.Is(err, db.ErrUnknownKey) {
				h.Set("WWW-Authenticate", apiRealm+`, error="invalid_token"`)
				return errAPIKeyInvalid
			}
			if err != nil {
				return err
			}
			if ok, wait := s.apiLimit.Allow(strconv.FormatInt(client.ID, 10)); !ok {
				return errAPIRateLimited(wait)
			}
			if !slices.Contains(client.Scopes, scope) {
				h.Set("WWW-Authenticate", apiRealm+`, error="insufficient_scope", scope="`+scope+`"`)
				return apperr.Newf(apperr.InsufficientScope, "This API key does not hold the scope "+scope+".",
					errors.New("api client "+client.Name+" lacks "+scope))
			}
			if s.usage != nil {
				s.usage.RecordKey(apikey.Hash(key), s.now())
			}
			c.Set(ctxAPIClient, client)
			if withLink {
				if l == nil {
					return db.ErrNotFound
				}
				c.Set(ctxAPILink, l)
			}
			return next(c)
		}
	}
}

// authenticate finds the key's client and the link, from the token cache
// when it has both, else in one database round trip (then cached).
func (s *Server) authenticate(c echo.Context, key, linkID string, useCache bool) (*db.APIClient, *db.Link, error) {
	hash := apikey.Hash(key)
	if s.cache == nil || !useCache {
		return s.store.AuthenticateWithLink(c.Request().Context(), hash, linkID)
	}
	var h [32]byte
	copy(h[:], hash)
	if cl, l, ok := s.cache.Get(h, linkID); ok {
		return &db.APIClient{ID: cl.ID, Name: cl.Name, Scopes: cl.Scopes}, l, nil
	}
	gen := s.cache.Gen()
	client, l, err := s.store.AuthenticateWithLink(c.Request().Context(), hash, linkID)
	// An old key after a rotation is never cached: its overlap ends without
	// a change notification.
	if err == nil && !client.UsedOldKey {
		s.cache.Put(gen, h, tokencache.Client{ID: client.ID, Name: client.Name, Scopes: client.Scopes}, l)
	}
	return client, l, err
}

// bearer returns the credentials of an "Authorization: Bearer ..." header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	key := strings.TrimSpace(h[len(p):])
	return key, key != ""
}

func apiClientOf(c echo.Context) *db.APIClient {
	client, _ := c.Get(ctxAPIClient).(*db.APIClient)
	return client
}

func apiLinkOf(c echo.Context) *db.Link { l, _ := c.Get(ctxAPILink).(*db.Link); return l }
