package linksession

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Allowlist is the operator's list of return URLs (LINK_RETURN_URLS). A URL
// is allowed when it matches one entry exactly on scheme, host and port, and
// its path equals the entry's path or continues it after a "/". URLs are
// compared parsed, never as strings; userinfo, backslashes, dot segments,
// scheme-relative and non-http(s) forms are refused outright.
type Allowlist struct {
	entries  []entry
	loopback bool // `web dev`: any http(s) URL on a loopback host
}

type entry struct {
	scheme, host, port string
	path               string // escaped, without a trailing "/"; "" matches every path
}

// ParseAllowlist reads a comma-separated list of URL prefixes.
func ParseAllowlist(v string) (*Allowlist, error) {
	a := &Allowlist{}
	for i, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := checkURL(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d %w", i+1, err) // never the value: it may hold a password
		}
		if u.RawQuery != "" || u.ForceQuery {
			return nil, fmt.Errorf("entry %d must not have a query", i+1)
		}
		a.entries = append(a.entries, entry{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: portOf(u),
			path: strings.TrimRight(u.EscapedPath(), "/")})
	}
	if len(a.entries) == 0 {
		return nil, errors.New("lists no URL")
	}
	return a, nil
}

// LoopbackAllowlist allows any http(s) URL on localhost or a loopback
// address, on any port and path (`web dev`), plus the entries of also.
func LoopbackAllowlist(also *Allowlist) *Allowlist {
	a := &Allowlist{loopback: true}
	if also != nil {
		a.entries = also.entries
	}
	return a
}

// Empty reports whether nothing at all is allowed (no LINK_RETURN_URLS).
func (a *Allowlist) Empty() bool { return a == nil || (len(a.entries) == 0 && !a.loopback) }

// ErrNotAllowed is returned (wrapped) for a return URL the allowlist refuses.
var ErrNotAllowed = errors.New("return URL not allowed")

// Check parses v and reports whether the allowlist allows it; the error
// says why not, in words safe to show the API caller.
func (a *Allowlist) Check(v string) (*url.URL, error) {
	if a.Empty() {
		return nil, fmt.Errorf("%w: no return URL is allowed until the operator sets LINK_RETURN_URLS", ErrNotAllowed)
	}
	u, err := checkURL(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	host, port, path := strings.ToLower(u.Hostname()), portOf(u), u.EscapedPath()
	if a.loopback && isLoopback(host) {
		return u, nil
	}
	for _, e := range a.entries {
		if e.scheme == u.Scheme && e.host == host && e.port == port &&
			(e.path == "" || path == e.path || strings.HasPrefix(path, e.path+"/")) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w: it matches no entry of LINK_RETURN_URLS (scheme, host and port exactly, then a path prefix)", ErrNotAllowed)
}

// checkURL refuses every form that parsers or browsers read differently:
// it wants an absolute http(s) URL with a host, no userinfo, no fragment,
// no backslash or control character, and no "." or ".." path segment
// (also percent-encoded).
func checkURL(v string) (*url.URL, error) {
	if len(v) > 2000 {
		return nil, errors.New("is longer than 2000 characters")
	}
	if strings.ContainsAny(v, "\\") {
		return nil, errors.New("contains a backslash")
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("contains a space or control character")
		}
	}
	if strings.HasPrefix(v, "//") {
		return nil, errors.New("is scheme-relative; give https://")
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil, errors.New("is not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	if u.Opaque != "" || u.Host == "" || !strings.HasPrefix(v[len(u.Scheme):], "://") {
		return nil, errors.New("must be an absolute URL with a host")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return nil, errors.New("must not contain a user name or password")
	}
	if u.Fragment != "" || strings.Contains(v, "#") {
		return nil, errors.New("must not have a fragment")
	}
	if u.Hostname() == "" {
		return nil, errors.New("must have a host")
	}
	if p := u.Port(); p != "" && strings.TrimLeft(p, "0123456789") != "" {
		return nil, errors.New("has an invalid port")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return nil, errors.New("has an invalid path")
		}
		if dec == "." || dec == ".." || strings.ContainsAny(dec, "/\\") {
			return nil, errors.New(`has a "." or ".." path segment or an encoded slash`)
		}
	}
	return u, nil
}

func portOf(u *url.URL) string {
	if p := strings.TrimLeft(u.Port(), "0"); p != "" {
		return p
	}
	if u.Port() != "" {
		return "0"
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
