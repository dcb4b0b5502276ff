// Package apperr is the one error vocabulary at the service boundary. A
// service translates what went wrong below it (database, sealing, Tesla)
// into an *Error whose Code is the problem type slug; the HTTP layer maps
// each code to a status and wording with a single table.
package apperr

import (
	"errors"
	"time"
)

// Code is a problem type slug. The API's slugs are documented in
// internal/handlers/openapi.yaml; the owner pages' codes appear in logs.
type Code string

// Codes shared by the API and the pages.
const (
	NotFound           Code = "not-found"
	MethodNotAllowed   Code = "method-not-allowed"
	TooLarge           Code = "too-large"
	BadRequest         Code = "bad-request"
	InvalidRequest     Code = "invalid-request"
	Unauthenticated    Code = "unauthenticated"
	InsufficientScope  Code = "insufficient-scope"
	ScopeNotGranted    Code = "scope-not-granted"
	LinkRevoked        Code = "link-revoked"
	ReauthRequired     Code = "reauth-required"
	TeslaMisconfigured Code = "tesla-client-misconfigured"
	TeslaUnavailable   Code = "tesla-unavailable"
	// TeslaInvalidResponse: Tesla answered, but the answer failed verification.
	TeslaInvalidResponse Code = "tesla-invalid-response"
	DatabaseUnavailable  Code = "database-unavailable"
	TokenKeyUnavailable  Code = "token-key-unavailable" // a stored token is sealed with a key this instance lacks
	CrossSiteRequest     Code = "cross-site-request"
	CSRF                 Code = "csrf"
	RateLimited          Code = "rate-limited" // a client address or API client is over its limit
	Internal             Code = "internal"
)

// Codes of the owner's login (the /connect form and the callback).
const (
	LoginFormUnreadable Code = "login-form-unreadable"  // the /connect form could not be parsed
	UnknownPermission   Code = "unknown-permission"     // a scope this service does not offer
	ReturnToTooLong     Code = "return-to-too-long"     // return_to would not fit in the login cookie
	LoginExpired        Code = "login-expired"          // no, an unreadable or an expired login state
	LoginStateMismatch  Code = "login-state-mismatch"   // the callback's state is not the login's
	LoginReplayed       Code = "login-replayed"         // the login state was used before
	LoginWrongIssuer    Code = "login-wrong-issuer"     // mix-up defence: the answer came from elsewhere
	LoginNoCode         Code = "login-no-code"          // neither code nor error on the callback
	LoginDenied         Code = "login-denied"           // error=access_denied
	LoginInvalidScope   Code = "login-invalid-scope"    // error=invalid_scope
	LoginSignInRequired Code = "login-sign-in-required" // error=login_required and the like
	LoginProviderDown   Code = "login-provider-down"    // error=temporarily_unavailable or server_error
	LoginProviderError  Code = "login-provider-error"   // any other error=
	LoginTeslaDown      Code = "login-tesla-down"       // the code exchange could not reach Tesla
	LoginMisconfigured  Code = "login-misconfigured"    // Tesla refused this service's client
	LoginCodeExpired    Code = "login-code-expired"     // Tesla says the code expired or was used
	LoginUnverified     Code = "login-unverified"       // Tesla's answer failed a check
)

// Codes of link sessions: the team's API (create, claim) and the owner's pages.
const (
	ReturnURLNotAllowed  Code = "return-url-not-allowed"  // return_url matches no LINK_RETURN_URLS entry
	LinkSessionNotLinked Code = "link-session-not-linked" // a claim before (or without) a link
	ClaimCodeInvalid     Code = "claim-code-invalid"      // not the code sent to the return URL
	ClaimCodeUsed        Code = "claim-code-used"         // a claim code works once
	ClaimCodeExpired     Code = "claim-code-expired"      // a claim code works 10 minutes
	ClaimMismatch        Code = "claim-mismatch"          // the claim's external_ref is not the session's
	LinkSessionUnknown   Code = "link-session-unknown"    // owner page: no such session URL
	LinkSessionExpired   Code = "link-session-expired"    // owner page: the session URL expired
	LinkSessionUsed      Code = "link-session-used"       // owner page: the session URL was used
)

// Codes of the owner's account pages.
const (
	UnknownParameter   Code = "unknown-parameter"     // a query parameter the page does not take
	NoSuchActivityPage Code = "no-such-activity-page" // an activity page number out of range
)

// Codes of the account page's vehicle list.
const (
	StoredTokenUnusable Code = "stored-token-unusable" // a sealed token could not be opened
	FleetNotRegistered  Code = "fleet-not-registered"  // Tesla wants partner registration in the region
	FleetWrongRegion    Code = "fleet-wrong-region"    // the account lives in another region
	FleetForbidden      Code = "fleet-forbidden"       // the granted scopes do not allow the call
)

// Error is a failure a caller can act on. Only Code, Detail and RetryAfter
// may be shown; Err is internal and only logged.
type Error struct {
	Code       Code
	Detail     string        // replaces the code's usual detail; safe to show
	RetryAfter time.Duration // replaces the code's usual Retry-After when set
	Err        error
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with code wrapping err (which may be nil).
func New(code Code, err error) *Error { return &Error{Code: code, Err: err} }

// Newf is New with a caller-facing detail.
func Newf(code Code, detail string, err error) *Error {
	return &Error{Code: code, Detail: detail, Err: err}
}

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns err's code, or "" when err carries none.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return ""
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }
