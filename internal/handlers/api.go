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
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the API's OpenAPI 3.1 document (served at /api/openapi.yaml).
func OpenAPI() []byte { return openapiYAML }

// linkSessionsOn answers 404 when this server runs without link sessions.
func (s *Server) linkSessionsOn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.linkSessions == nil {
			return echo.ErrNotFound
		}
		return next(c)
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
func (s *Server) apiKey(scope string, withLink bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key, err := bearerKey(c)
			if err != nil {
				return err
			}
			linkID := ""
			if withLink {
				linkID = c.Param("id")
			}
			hash := apikey.Hash(key)
			client, l, err := s.store.AuthenticateWithLink(c.Request().Context(), hash, linkID)
			if errors.Is(err, db.ErrUnknownKey) {
				err = apperr.New(apperr.Unauthenticated, err)
			} else if err == nil {
				err = s.admitAPIClient(client.ID)
			}
			if err == nil && !slices.Contains(client.Scopes, scope) {
				err = apperr.Newf(apperr.InsufficientScope, "This API key does not hold the scope "+scope+".",
					errors.New("api client "+client.Name+" lacks "+scope))
			}
			if err != nil {
				challenge(c, err, scope)
				return err
			}
			if s.usage != nil {
				s.usage.RecordKey(hash, s.now())
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

// admitAPIClient applies the per-client API rate limit.
func (s *Server) admitAPIClient(clientID int64) error {
	if ok, wait := s.apiLimit.Allow(strconv.FormatInt(clientID, 10)); !ok {
		return errAPIRateLimited(wait)
	}
	return nil
}

// bearerKey returns the request's API key when it is well formed, else the
// 401 to answer (with its WWW-Authenticate challenge).
func bearerKey(c echo.Context) (string, error) {
	key, ok := bearer(c.Request())
	if !ok {
		c.Response().Header().Set("WWW-Authenticate", apiRealm)
		return "", errAPIKeyMissing
	}
	if !apikey.WellFormed(key) {
		c.Response().Header().Set("WWW-Authenticate", apiRealm+`, error="invalid_token"`)
		return "", errAPIKeyInvalid
	}
	return key, nil
}

// challenge sets the WWW-Authenticate header for a refused key (RFC 6750).
func challenge(c echo.Context, err error, scope string) {
	switch apperr.CodeOf(err) {
	case apperr.Unauthenticated:
		c.Response().Header().Set("WWW-Authenticate", apiRealm+`, error="invalid_token"`)
	case apperr.InsufficientScope:
		c.Response().Header().Set("WWW-Authenticate", apiRealm+`, error="insufficient_scope", scope="`+scope+`"`)
	}
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
