package handlers

import (
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
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

	// Token broker API for the team's backends (API key).
	s.apiRoutes(e.Group("/api"))
}
