package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"teslalink/internal/apikey"
)

// routes lists every route of the service: the whole surface on one screen.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.requestID)
	e.Use(s.accessLog)
	e.Use(middleware.Recover())        // inside the access log, so a recovered panic is logged as a 500
	e.Use(middleware.BodyLimit("64K")) // no form or API body here needs more
	e.Use(s.securityHeaders)
	if s.cfg.CanonicalHost {
		e.Use(s.canonicalHost)
	}
	e.Use(s.sameOriginPosts)

	// Operations.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*", s.static)
	e.GET("/.well-known/appspecific/com.tesla.3p.public-key.pem", s.publicKey)

	// Owner pages.
	e.GET("/", s.landing)
	e.GET("/connect", s.connectForm, s.limitByAddress)
	e.POST("/connect", s.connectStart, s.limitByAddress)
	e.GET("/auth/tesla/callback", s.callback, s.limitByAddress)
	e.GET("/account", s.account)
	e.GET("/account/revoke", s.revokeConfirm)
	e.POST("/account/revoke", s.revoke)
	e.GET("/account/data", s.downloadData)
	e.GET("/account/delete", s.deleteConfirm)
	e.POST("/account/delete", s.deleteAll)
	e.POST("/logout", s.logout)
	e.POST("/language", s.setLanguage)

	// Link sessions: a team's app sends an owner here to connect (the id is the session's).
	e.GET("/link/:id", s.linkSessionPage, s.linkSessionsOn)
	e.POST("/link/:id", s.linkSessionStart, s.linkSessionsOn)

	// Token broker API for the team's backends. Every /api/v1 route needs an
	// API key with the route's scope; link ids are canonicalised before
	// anything reads them, and unknown query parameters are refused; errors
	// are RFC 9457 problems.
	e.GET("/api/openapi.yaml", s.openapiDoc)
	v1 := e.Group("/api/v1")
	v1.GET("/links", s.apiListLinks, s.apiKey(apikey.ScopeLinksRead, false),
		allowQuery("status", "owner_sub", "external_ref", "cursor", "limit"))
	v1.GET("/links/:id", s.apiGetLink, canonicalLinkID, s.apiKey(apikey.ScopeLinksRead, true), allowQuery())
	// The token route is authorised by the link service (with its token
	// cache); apiToken checks the query once the caller is authorised.
	v1.POST("/links/:id/token", s.apiToken, canonicalLinkID)
	v1.DELETE("/links/:id", s.apiDeleteLink, canonicalLinkID, s.apiKey(apikey.ScopeLinksDelete, false), allowQuery())
	v1.DELETE("/owners/:sub", s.apiEraseOwner, s.apiKey(apikey.ScopeOwnersErase, false), allowQuery())
	v1.POST("/link-sessions", s.apiCreateLinkSession, s.apiKey(apikey.ScopeLinksCreate, false), s.linkSessionsOn, allowQuery())
	v1.POST("/link-sessions/:id/claim", s.apiClaimLinkSession, s.apiKey(apikey.ScopeLinksCreate, false), s.linkSessionsOn, allowQuery())
}
