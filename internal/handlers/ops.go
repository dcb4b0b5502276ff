package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"teslalink/web/static"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Drain makes /readyz answer 503 from now on, while every other route keeps
// serving: the first step of a graceful stop behind a load balancer.
func (s *Server) Drain() { s.draining.Store(true) }

// readyz is 200 when the database answers, else 503; 503 too once the
// instance is draining. It also reports whether Tesla's metadata has been
// discovered (pages say so when not).
func (s *Server) readyz(c echo.Context) error {
	out := map[string]string{"database": "ok", "tesla": "ok"}
	status := http.StatusOK
	if s.draining.Load() {
		out["status"] = "draining"
		c.Response().Header().Set("Connection", "close")
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	if err := s.store.Ping(c.Request().Context()); err != nil {
		out["database"] = "unreachable"
		status = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "5")
	}
	if s.tesla != nil && !s.tesla.Ready() {
		out["tesla"] = "unreachable"
	}
	return c.JSON(status, out)
}

// staticPaths returns the asset URLs with a content hash, so they can be cached for a year.
func staticPaths() (css, icon string) {
	return "/static/app.css?v=" + assetHash("app.css"), "/static/favicon.svg?v=" + assetHash("favicon.svg")
}

func assetHash(name string) string {
	b, err := fs.ReadFile(static.FS, name)
	if err != nil {
		return "0"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

func (s *Server) static(c echo.Context) error {
	name := path.Clean(c.Param("*"))
	b, err := fs.ReadFile(static.FS, name)
	if err != nil {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return c.Blob(http.StatusOK, ct, b)
}

// publicKey serves the app's public key for Tesla's partner registration.
func (s *Server) publicKey(c echo.Context) error {
	if len(s.cfg.PublicKeyPEM) == 0 {
		return echo.ErrNotFound
	}
	return c.Blob(http.StatusOK, "application/x-pem-file", s.cfg.PublicKeyPEM)
}
