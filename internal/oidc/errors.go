package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. They are usually wrapped inside an *Error; test with errors.Is.
var (
	// ErrNotReady means the provider metadata has not been discovered yet (Tesla unreachable).
	ErrNotReady = errors.New("oidc: provider discovery has not succeeded yet")
	// ErrSubMismatch means a userinfo or refreshed ID token names another subject.
	ErrSubMismatch = errors.New("oidc: subject does not match")
	// ErrStateInvalid means a callback state did not match the login transaction.
	ErrStateInvalid = errors.New("oidc: invalid state")
	// ErrIssuerMismatch means an issuer (callback parameter or ID token claim) is not the expected one.
	ErrIssuerMismatch = errors.New("oidc: issuer mismatch")
	// ErrTokenBudget means the call was not made: this instance's budget of calls to the
	// token endpoint (Config.TokenBudget) is used up for now.
	ErrTokenBudget = errors.New("oidc: budget of token endpoint calls used up")
	// ErrPublicClient means the request needs a client secret and this client has none
	// (a public client: Tesla's open-source apps get no partner token).
	ErrPublicClient = errors.New("oidc: a public client (no client secret) cannot do this")
)

// Kind classifies an error by what the caller should do about it.
type Kind int

// Error kinds.
const (
	// KindUnknown is anything not classified below.
	KindUnknown Kind = iota
	// KindReauth: the owner must link again (login_required, invalid_grant, expired or cycled refresh token).
	KindReauth
	// KindConfig: our client configuration is wrong (unauthorized_client, invalid_client, invalid_redirect_url, ...): an operator problem.
	KindConfig
	// KindTransient: retry later (5xx, 429, network errors, timeouts, provider not discovered yet).
	KindTransient
	// KindInvalid: something the provider sent failed validation (bad ID token, issuer mismatch, malformed response, bad code).
	KindInvalid
	// KindForbidden: a resource server (the Fleet API) answered 403 (usually a missing scope).
	KindForbidden
	// KindRegion: the Fleet API answered 421 (wrong region base URL).
	KindRegion
	// KindNotRegistered: the Fleet API answered 412 (partner account not registered in that region).
	KindNotRegistered
)

// String returns a short lower-case name for logs.
func (k Kind) String() string {
	switch k {
	case KindReauth:
		return "reauth required"
	case KindConfig:
		return "client configuration error"
	case KindTransient:
		return "transient error"
	case KindInvalid:
		return "invalid response"
	case KindForbidden:
		return "forbidden"
	case KindRegion:
		return "wrong region"
	case KindNotRegistered:
		return "partner not registered"
	default:
		return "error"
	}
}

// Error is the error type returned by Client methods and by internal/fleet. Its text
// never contains tokens, codes or secrets.
type Error struct {
	Kind Kind
	// Op names the operation, e.g. "refresh", "exchange", "vehicles".
	Op string
	// Status is the HTTP status code answered by the remote side (0 if none).
	Status int
	// Code is the OAuth `error` code (or the Fleet API `error` field), if any.
	Code string
	// RetryAfter is the delay the server asked for (Retry-After), if any.
	RetryAfter time.Duration
	// Err is the underlying cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oidc: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Status != 0 || e.Code != "" {
		b.WriteString(" (")
		if e.Status != 0 {
			b.WriteString("HTTP ")
			b.WriteString(strconv.Itoa(e.Status))
		}
		if e.Code != "" {
			if e.Status != 0 {
				b.WriteString(", ")
			}
			b.WriteString(sanitizeCode(e.Code))
		}
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		b.WriteString(", retry after ")
		b.WriteString(e.RetryAfter.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err: the Kind of the first *Error in its chain, KindTransient
// for ErrNotReady and timeouts, else KindUnknown.
func KindOf(err error) Kind {
	if err == nil {
		return KindUnknown
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, ErrNotReady) || errors.Is(err, context.DeadlineExceeded) {
		return KindTransient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return KindTransient
	}
	return KindUnknown
}

// RetryAfterOf returns the Retry-After delay carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// kindForCode maps an OAuth / Tesla error code to a Kind; ok is false for unknown codes.
func kindForCode(code string) (Kind, bool) {
	switch code {
	case "login_required", "invalid_grant", "invalid_token", "consent_required", "interaction_required":
		return KindReauth, true
	case "unauthorized_client", "invalid_client", "invalid_redirect_url", "invalid_redirect_uri",
		"unsupported_grant_type", "invalid_scope", "invalid_request":
		return KindConfig, true
	case "invalid_auth_code":
		return KindInvalid, true
	case "temporarily_unavailable", "server_error", "slow_down":
		return KindTransient, true
	}
	return KindUnknown, false
}

// kindForStatus maps an HTTP status to a Kind.
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return KindTransient
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusMisdirectedRequest:
		return KindRegion
	case status == http.StatusPreconditionFailed:
		return KindNotRegistered
	}
	return KindUnknown
}

// classifyHTTP builds an *Error for a non-2xx answer. Server-side status wins over an
// unknown code; a known code wins for 4xx (Tesla answers 401 login_required).
func classifyHTTP(op string, status int, code string, h http.Header, now time.Time) *Error {
	code = sanitizeCode(code)
	kind := kindForStatus(status)
	if kind != KindTransient {
		if k, ok := kindForCode(code); ok {
			kind = k
		}
	}
	return &Error{
		Kind:       kind,
		Op:         op,
		Status:     status,
		Code:       code,
		RetryAfter: parseRetryAfter(h.Get("Retry-After"), now),
		Err:        fmt.Errorf("remote answered HTTP %d", status),
	}
}

// ResourceError classifies a non-2xx answer of a server called with a bearer access token
// (the userinfo endpoint, Tesla's Fleet API). The status decides whenever it names a Kind
// (403, 408, 412, 421, 429, 5xx), over any free text in the body; otherwise a known OAuth
// `error` code in the JSON body does (401 invalid_token → KindReauth). Code keeps the
// body's `error` only when it looks like a code, so the text never quotes what the server
// echoed back.
func ResourceError(op string, status int, body []byte, h http.Header, now time.Time) *Error {
	var eb struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &eb)
	e := classifyHTTP(op, status, eb.Error, h, now)
	if k := kindForStatus(status); k != KindUnknown {
		e.Kind = k
	}
	return e
}

// sanitizeCode returns code if it looks like an OAuth error code (at most 48 characters of
// [A-Za-z0-9_.-]) and "" otherwise, so free text a server echoes back (which might include
// a token) never reaches an error message or a log line.
func sanitizeCode(code string) string {
	if len(code) > 48 {
		return ""
	}
	for _, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return ""
		}
	}
	return code
}

// parseRetryAfter reads a Retry-After header (delta seconds or HTTP date).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		if n > 86400 {
			n = 86400
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// transportError wraps a network-level failure.
func transportError(op string, err error) *Error {
	return &Error{Kind: KindTransient, Op: op, Err: err}
}
