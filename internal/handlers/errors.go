package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/web/templates"
)

var errForbiddenCrossSite = apperr.New(apperr.CrossSiteRequest, nil)

// problemBase prefixes problem types; the slugs are documented in openapi.yaml.
const problemBase = "https://teslalink.dev/problems/"

// answer is what the caller of a failed request sees.
type answer struct {
	code apperr.Code
	problem
}

// classify maps any error to what the caller sees, with the problems table.
// Services return *apperr.Error; what is left here are Echo's own errors
// (unknown route, method, body limit) and errors of the store's direct reads.
func classify(err error) answer {
	e, ok := apperr.As(err)
	if !ok {
		e = fromOther(err)
	}
	a := answer{code: e.Code, problem: problems[e.Code]}
	if a.Status == 0 {
		a = answer{code: apperr.Internal, problem: problems[apperr.Internal]}
	}
	var he *echo.HTTPError
	if e.Code == apperr.BadRequest && errors.As(err, &he) {
		a.Status, a.Title = he.Code, http.StatusText(he.Code)
	}
	if e.Detail != "" {
		a.Detail, a.Message = e.Detail, ""
	}
	if e.RetryAfter > 0 {
		a.RetryAfter = e.RetryAfter
	}
	return a
}

// fromOther translates an error that carries no code.
func fromOther(err error) *apperr.Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return apperr.New(apperr.NotFound, err)
		case http.StatusMethodNotAllowed:
			return apperr.New(apperr.MethodNotAllowed, err)
		case http.StatusRequestEntityTooLarge:
			return apperr.New(apperr.TooLarge, err)
		}
		if he.Code >= 400 && he.Code < 500 {
			return apperr.New(apperr.BadRequest, err)
		}
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		return apperr.Newf(apperr.NotFound, "No such link.", err)
	case db.Unavailable(err):
		return apperr.New(apperr.DatabaseUnavailable, err)
	}
	return apperr.New(apperr.Internal, err)
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
	s.log.Log(c.Request().Context(), level, "request failed", "ref", ref, "status", ae.Status, "type", string(ae.code), "error", err)
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Round(time.Second)/time.Second)))
	}
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		_ = writeProblem(c, ae, ref)
		return
	}
	heading, message := ae.Heading, ae.Message
	if heading == "" {
		heading = ae.Title
	}
	if message == "" {
		message = ae.Detail
	}
	_ = s.render(c, ae.Status, templates.Error(templates.ErrorPage{Base: s.base(c, heading), Status: ae.Status,
		Heading: heading, Message: message, RetryURL: ae.RetryURL, Reference: ref}))
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

func writeProblem(c echo.Context, ae answer, ref string) error {
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(ae.Status)
	return jsonEncode(c.Response(), Problem{Type: problemBase + string(ae.code), Title: ae.Title, Status: ae.Status,
		Detail: ae.Detail, Instance: c.Request().URL.Path, Reference: ref})
}
