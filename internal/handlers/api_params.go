package handlers

import (
	"net/url"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"teslalink/internal/db"
)

// allowQuery refuses a request whose query string is malformed, names a
// parameter other than names, or gives one twice: a typo must not silently
// widen what a call returns.
func allowQuery(names ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := checkQuery(c.Request().URL.RawQuery, names...); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// checkQuery is allowQuery's check of a raw query string.
func checkQuery(raw string, names ...string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return badRequest("The query string is malformed.")
	}
	var unknown, repeated []string
	for name, values := range q {
		switch {
		case !slices.Contains(names, name):
			unknown = append(unknown, printable(name))
		case len(values) > 1:
			repeated = append(repeated, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		allowed := "This call takes no query parameters."
		if len(names) > 0 {
			allowed = "Known: " + strings.Join(names, ", ") + "."
		}
		return badRequest("Unknown query parameter: " + strings.Join(unknown, ", ") + ". " + allowed)
	}
	if len(repeated) > 0 {
		sort.Strings(repeated)
		return badRequest("Query parameter given more than once: " + strings.Join(repeated, ", ") + ".")
	}
	return nil
}

// printable shortens a client-supplied name and replaces anything but
// printable characters, so it can be quoted in a problem and a log line.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// canonicalLinkID rewrites the :id path parameter to the canonical form of
// a link id (lower-case UUID), once, before anything reads it: the token
// cache, the database and the sealed tokens' associated data all use that
// form, so one link gets one answer however its id is spelled. An id that
// is not a UUID is left as it is and is not found.
func canonicalLinkID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		names, values := c.ParamNames(), c.ParamValues()
		for i, name := range names {
			if name != "id" || i >= len(values) {
				continue
			}
			if b, ok := db.ParseLinkID(values[i]); ok {
				values = slices.Clone(values)
				values[i] = db.FormatLinkID(b)
				c.SetParamValues(values...)
			}
		}
		return next(c)
	}
}

// maxOwnerSub bounds owner_sub: OpenID Connect limits `sub` to 255 ASCII characters.
const maxOwnerSub = 255

// validOwnerSub accepts what a provider's `sub` can be: valid UTF-8 without
// control characters (PostgreSQL text cannot hold NUL), at most 255 bytes.
func validOwnerSub(s string) bool {
	if len(s) > maxOwnerSub || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
