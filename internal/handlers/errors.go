package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/web/templates"
)

// appError is an error with what to tell the owner (page) or the caller
// (problem). Err is internal and only logged.
type appError struct {
	Status     int
	Type       string // problem type slug, e.g. "reauth-required"
	Title      string // short, safe to show
	Detail     string // safe to show
	Heading    string // owner page heading ("" → Title)
	RetryURL   string // owner page "Try again" link
	RetryAfter time.Duration
	Err        error
}

func (e *appError) Error() string {
	if e.Err != nil {
		return e.Title + ": " + e.Err.Error()
	}
	return e.Title
}

func (e *appError) Unwrap() error { return e.Err }

var errForbiddenCrossSite = &appError{Status: http.StatusForbidden, Type: "cross-site-request",
	Title: "Request refused", Detail: "This form was sent from another site, so it was refused. Open the page again and retry.",
	RetryURL: "/"}

// problemBase prefixes problem types; the slugs are documented in openapi.yaml.
const problemBase = "https://teslalink.dev/problems/"

// classify maps any error to what the caller sees.
func classify(err error) *appError {
	var ae *appError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &appError{Status: 404, Type: "not-found", Title: "Not found", Detail: "There is nothing at this address.", RetryURL: "/", Err: err}
		case http.StatusMethodNotAllowed:
			return &appError{Status: 405, Type: "method-not-allowed", Title: "Method not allowed", Detail: "This address does not accept that method.", RetryURL: "/", Err: err}
		case http.StatusRequestEntityTooLarge:
			return &appError{Status: 413, Type: "too-large", Title: "Request too large", Detail: "The request body is too large.", Err: err}
		}
		if he.Code >= 400 && he.Code < 500 {
			return &appError{Status: he.Code, Type: "bad-request", Title: http.StatusText(he.Code), Detail: "The request could not be understood.", RetryURL: "/", Err: err}
		}
	}
	var unavailable *link.UnavailableError
	switch {
	case errors.Is(err, db.ErrNotFound):
		return &appError{Status: 404, Type: "not-found", Title: "Not found", Detail: "No such link.", Err: err}
	case errors.Is(err, link.ErrRevoked):
		return &appError{Status: 410, Type: "link-revoked", Title: "Link revoked", Detail: "The owner or the team revoked this link; the owner must connect again.", Err: err}
	case errors.Is(err, link.ErrReauthRequired):
		return &appError{Status: 409, Type: "reauth-required", Title: "Owner must link again", Detail: "Tesla no longer accepts this link's refresh token; the owner must connect their Tesla account again.", Err: err}
	case errors.Is(err, link.ErrMissingScope):
		return &appError{Status: 403, Type: "scope-not-granted", Title: "Scope not granted", Detail: "The owner has not granted a scope this request needs.", Err: err}
	case errors.Is(err, link.ErrTokenKeyMissing):
		return &appError{Status: 503, Type: "token-key-unavailable", Title: "Service unavailable",
			Detail:     "This instance cannot open the stored token yet (an encryption key change is being deployed); retry later.",
			RetryAfter: 30 * time.Second, Err: err}
	case errors.Is(err, link.ErrTeslaConfig):
		return &appError{Status: 502, Type: "tesla-client-misconfigured", Title: "Tesla rejected this service's credentials", Detail: "The operator must check the Tesla client configuration.", RetryAfter: 60 * time.Second, Err: err}
	case errors.As(err, &unavailable):
		return &appError{Status: 503, Type: "tesla-unavailable", Title: "Tesla is unavailable", Detail: "Tesla did not answer in time; retry later.", RetryAfter: unavailable.RetryAfter, Err: err}
	case db.Unavailable(err):
		return &appError{Status: 503, Type: "database-unavailable", Title: "Service unavailable", Detail: "The service cannot reach its database; retry later.", RetryAfter: 5 * time.Second, Err: err}
	}
	return &appError{Status: 500, Type: "internal", Title: "Something went wrong", Detail: "An unexpected error occurred.", RetryURL: "/", Err: err}
}

// handleError is the one Echo HTTPErrorHandler: owners get a friendly page,
// /api/ callers an RFC 9457 problem. Internal detail only reaches the log.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := classify(err)
	ref := reference(c)
	level := slog.LevelInfo
	if ae.Status >= 500 {
		level = slog.LevelError
	}
	s.log.Log(c.Request().Context(), level, "request failed", "ref", ref, "status", ae.Status, "type", ae.Type, "error", err)
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Round(time.Second)/time.Second)))
	}
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		_ = writeProblem(c, ae, ref)
		return
	}
	heading := ae.Heading
	if heading == "" {
		heading = ae.Title
	}
	_ = s.render(c, ae.Status, templates.Error(templates.ErrorPage{Base: s.base(c, ae.Title), Status: ae.Status,
		Heading: heading, Message: ae.Detail, RetryURL: ae.RetryURL, Reference: ref}))
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Reference string `json:"reference,omitempty"`
}

func writeProblem(c echo.Context, ae *appError, ref string) error {
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(ae.Status)
	return jsonEncode(c.Response(), Problem{Type: problemBase + ae.Type, Title: ae.Title, Status: ae.Status,
		Detail: ae.Detail, Instance: c.Request().URL.Path, Reference: ref})
}

func pageError(status int, heading, message, retry string, err error) *appError {
	return &appError{Status: status, Type: "page", Title: heading, Heading: heading, Detail: message, RetryURL: retry,
		Err: orNil(err)}
}

func orNil(err error) error {
	if err == nil {
		return errors.New("no further detail")
	}
	return err
}
