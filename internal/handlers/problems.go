package handlers

import (
	"net/http"
	"time"

	"teslalink/internal/apperr"
)

// problem is how one error code is answered: an RFC 9457 problem for /api
// callers (Title, Detail), a friendly page for owners (Heading and Message,
// which default to Title and Detail), and, for the codes the vehicle list
// can fail with, the account page's note.
type problem struct {
	Status     int
	Title      string // short, safe to show; the same for every occurrence
	Detail     string // safe to show; an error's own Detail replaces it
	Heading    string // owner page heading ("" → Title)
	Message    string // owner page text ("" → Detail)
	RetryURL   string // owner page "Try again" link
	RetryAfter time.Duration
	Vehicles   string // account page note when listing vehicles fails with this code
}

// problems is the one table from error code to what the caller sees.
var problems = map[apperr.Code]problem{
	apperr.NotFound: {Status: http.StatusNotFound, Title: "Not found", Detail: "There is nothing at this address.", RetryURL: "/"},
	apperr.MethodNotAllowed: {Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Detail: "This address does not accept that method.", RetryURL: "/"},
	apperr.TooLarge:       {Status: http.StatusRequestEntityTooLarge, Title: "Request too large", Detail: "The request body is too large."},
	apperr.BadRequest:     {Status: http.StatusBadRequest, Title: "Bad Request", Detail: "The request could not be understood.", RetryURL: "/"},
	apperr.InvalidRequest: {Status: http.StatusBadRequest, Title: "Invalid request", Detail: "The request is not valid."},
	apperr.Unauthenticated: {Status: http.StatusUnauthorized, Title: "API key not accepted",
		Detail: "The API key is unknown or has been revoked."},
	apperr.InsufficientScope: {Status: http.StatusForbidden, Title: "API key lacks a scope",
		Detail: "This API key does not hold the scope this request needs."},
	apperr.ScopeNotGranted: {Status: http.StatusForbidden, Title: "Scope not granted",
		Detail: "The owner has not granted a scope this request needs."},
	apperr.LinkRevoked: {Status: http.StatusGone, Title: "Link revoked",
		Detail: "The owner or the team revoked this link; the owner must connect again."},
	apperr.ReauthRequired: {Status: http.StatusConflict, Title: "Owner must link again",
		Detail:   "Tesla no longer accepts this link's refresh token; the owner must connect their Tesla account again.",
		Vehicles: "Tesla asked you to sign in again before we can show your vehicles."},
	apperr.TeslaMisconfigured: {Status: http.StatusBadGateway, Title: "Tesla rejected this service's credentials",
		Detail: "The operator must check the Tesla client configuration.", RetryAfter: 60 * time.Second},
	apperr.TeslaInvalidResponse: {Status: http.StatusBadGateway, Title: "Tesla's answer failed verification",
		Detail:     "Tesla answered, but its answer did not pass this service's checks (for example the ID token's signature or lifetime); the operator has been alerted. The link is kept; retry later.",
		RetryAfter: 30 * time.Second},
	apperr.TeslaUnavailable: {Status: http.StatusServiceUnavailable, Title: "Tesla is unavailable",
		Detail: "Tesla did not answer in time; retry later.", Heading: "Tesla can't be reached right now",
		Message:  "We could not reach Tesla's sign-in service. Nothing was changed. Please try again in a few minutes.",
		RetryURL: "/connect"},
	apperr.DatabaseUnavailable: {Status: http.StatusServiceUnavailable, Title: "Service unavailable",
		Detail: "The service cannot reach its database; retry later.", RetryAfter: 5 * time.Second},
	apperr.TokenKeyUnavailable: {Status: http.StatusServiceUnavailable, Title: "Service unavailable",
		Detail:     "This instance cannot open the stored token yet (an encryption key change is being deployed); retry later.",
		RetryAfter: 30 * time.Second,
		Vehicles:   "We can't reach your Tesla connection for a moment while the service is updated. Your connection is fine; try again in a minute."},
	apperr.CrossSiteRequest: {Status: http.StatusForbidden, Title: "Request refused",
		Detail: "This form was sent from another site, so it was refused. Open the page again and retry.", RetryURL: "/"},
	apperr.CSRF: {Status: http.StatusForbidden, Title: "This form has expired",
		Detail: "The form was too old or did not come from this site. Open the page again and retry.", RetryURL: "/account"},
	apperr.RateLimited: {Status: http.StatusTooManyRequests, Title: "Too many requests",
		Detail:   "This API key sent more requests than its limit allows; retry after the delay in Retry-After.",
		Heading:  "Too many attempts",
		Message:  "There were too many sign-in attempts from your network in a short time. Nothing was changed. Please wait a minute, then try again.",
		RetryURL: "/connect", RetryAfter: time.Second},
	apperr.Internal: {Status: http.StatusInternalServerError, Title: "Something went wrong", Detail: "An unexpected error occurred.",
		RetryURL: "/"},

	// The owner's login.
	apperr.LoginFormUnreadable: {Status: http.StatusBadRequest, Title: "That form could not be read",
		Detail: "Please go back and choose your permissions again.", RetryURL: "/connect"},
	apperr.UnknownPermission: {Status: http.StatusBadRequest, Title: "Unknown permission",
		Detail: "One of the chosen permissions is not offered by this service. Please choose again.", RetryURL: "/connect"},
	apperr.ReturnToTooLong: {Status: http.StatusBadRequest, Title: "That link is too long",
		Detail:   "The address to come back to after linking is too long. Nothing was changed. Please start again from this service's own page.",
		RetryURL: "/connect"},
	apperr.LoginExpired: {Status: http.StatusBadRequest, Title: "This sign-in link has expired",
		Detail:   "The sign-in was started in another browser, took longer than 10 minutes, or was already used. Nothing was changed. Please start again.",
		RetryURL: "/connect"},
	apperr.LoginStateMismatch: {Status: http.StatusBadRequest, Title: "This sign-in link is not valid",
		Detail:   "The answer from Tesla did not match the sign-in you started here. Nothing was changed. Please start again.",
		RetryURL: "/connect"},
	apperr.LoginReplayed: {Status: http.StatusBadRequest, Title: "This sign-in link was already used",
		Detail: "Each sign-in link works once. Nothing was changed. Please start again.", RetryURL: "/connect"},
	apperr.LoginWrongIssuer: {Status: http.StatusBadRequest, Title: "This sign-in answer came from the wrong place",
		Detail:   "The answer did not come from the Tesla sign-in service we sent you to, so we ignored it. Nothing was changed. Please start again.",
		RetryURL: "/connect"},
	apperr.LoginNoCode: {Status: http.StatusBadRequest, Title: "Tesla did not complete the sign-in",
		Detail: "Tesla's answer had no authorisation in it. Nothing was changed. Please start again.", RetryURL: "/connect"},
	apperr.LoginDenied: {Status: http.StatusOK, Title: "You did not allow access",
		Detail: "You chose not to share your Tesla account, so nothing was linked. You can connect whenever you like.", RetryURL: "/connect"},
	apperr.LoginInvalidScope: {Status: http.StatusBadRequest, Title: "The sign-in service refused some permissions",
		Detail:   "The sign-in service does not offer one of the permissions asked for. Nothing was linked. Try again with fewer permissions.",
		RetryURL: "/connect"},
	apperr.LoginSignInRequired: {Status: http.StatusBadRequest, Title: "Tesla needs you to sign in",
		Detail: "Tesla asked you to sign in again. Nothing was linked. Please start again.", RetryURL: "/connect"},
	apperr.LoginProviderDown: {Status: http.StatusServiceUnavailable, Title: "Tesla can't complete sign-in right now",
		Detail: "Tesla's sign-in service had a problem. Nothing was linked. Please try again in a few minutes.", RetryURL: "/connect"},
	apperr.LoginProviderError: {Status: http.StatusBadRequest, Title: "Tesla did not complete the sign-in",
		Detail: "Tesla reported a problem with the sign-in. Nothing was linked. Please start again.", RetryURL: "/connect"},
	apperr.LoginTeslaDown: {Status: http.StatusServiceUnavailable, Title: "Tesla isn't answering right now",
		Detail:   "We could not finish linking because Tesla did not answer. Nothing was linked. Please try again in a few minutes.",
		RetryURL: "/connect"},
	apperr.LoginMisconfigured: {Status: http.StatusBadGateway, Title: "This service is not set up correctly",
		Detail: "Tesla rejected this service's registration. The operator has been alerted. Nothing was linked.", RetryURL: "/"},
	apperr.LoginCodeExpired: {Status: http.StatusBadRequest, Title: "This sign-in has expired",
		Detail: "Tesla says the sign-in code has expired or was already used. Nothing was linked. Please start again.", RetryURL: "/connect"},
	apperr.LoginUnverified: {Status: http.StatusBadRequest, Title: "We could not verify Tesla's answer",
		Detail:   "The answer from Tesla did not pass our security checks, so nothing was linked. Please start again; if it keeps happening, contact support with the reference below.",
		RetryURL: "/connect"},

	// Link sessions: the team's API and the owner's session pages.
	apperr.ReturnURLNotAllowed: {Status: http.StatusUnprocessableEntity, Title: "Return URL not allowed",
		Detail: "return_url matches no entry of LINK_RETURN_URLS."},
	apperr.LinkSessionNotLinked: {Status: http.StatusConflict, Title: "Nothing to claim",
		Detail: "The owner has not finished this link session with a link (it is still open, was denied, or failed)."},
	apperr.ClaimCodeInvalid: {Status: http.StatusForbidden, Title: "Claim code not valid",
		Detail: "The code is not the one this link session sent to the return URL. Nothing was bound."},
	apperr.ClaimCodeUsed: {Status: http.StatusConflict, Title: "Claim code already used",
		Detail: "Each claim code works once. Nothing was bound."},
	apperr.ClaimCodeExpired: {Status: http.StatusGone, Title: "Claim code expired",
		Detail: "A claim code works for 10 minutes after the owner returns. Nothing was bound; start a new link session."},
	apperr.ClaimMismatch: {Status: http.StatusConflict, Title: "external_ref does not match",
		Detail: "This link session was created for another external_ref, so the session URL may have reached another user. " +
			"Nothing was bound and the code is spent."},
	apperr.LinkSessionUnknown: {Status: http.StatusNotFound, Title: "This link is not valid",
		Detail:   "We don't know this connection link. Nothing was changed. Please go back to the app that sent you and start again there.",
		RetryURL: ""},
	apperr.LinkSessionExpired: {Status: http.StatusGone, Title: "This link has expired",
		Detail:   "Connection links work for a short time only. Nothing was changed. Please go back to the app that sent you and start again there.",
		RetryURL: ""},
	apperr.LinkSessionUsed: {Status: http.StatusGone, Title: "This link was already used",
		Detail:   "Each connection link works once. Nothing was changed. Please go back to the app that sent you and start again there.",
		RetryURL: ""},

	// The owner's account pages.
	apperr.UnknownParameter: {Status: http.StatusBadRequest, Title: "This address is not one we know",
		Detail: "This page does not take that parameter. Open your account page again.", RetryURL: "/account"},
	apperr.NoSuchActivityPage: {Status: http.StatusBadRequest, Title: "This activity page does not exist",
		Detail: "Activity pages are numbered from 1. Open your account page again.", RetryURL: "/account"},

	// The account page's vehicle list (never an error page of its own).
	apperr.StoredTokenUnusable: {Status: http.StatusInternalServerError, Title: "Something went wrong", Detail: "An unexpected error occurred.",
		RetryURL: "/", Vehicles: "We could not use the stored Tesla connection. Please connect again (Change permissions) to show your vehicles."},
	apperr.FleetNotRegistered: {Status: http.StatusBadGateway, Title: "Tesla has not enabled this service here",
		Detail:   "Tesla has not enabled vehicle data for this service in this region yet.",
		Vehicles: "Tesla has not enabled vehicle data for this service in your region yet. Your connection is fine."},
	apperr.FleetWrongRegion: {Status: http.StatusBadGateway, Title: "Wrong Tesla region",
		Detail:   "The account is served from another Tesla region.",
		Vehicles: "Your vehicles are served from another Tesla region; we will show them once this is sorted out. Your connection is fine."},
	apperr.FleetForbidden: {Status: http.StatusForbidden, Title: "Tesla refused the request",
		Detail:   "Tesla did not allow this with the permissions granted.",
		Vehicles: "Tesla did not allow us to list your vehicles with the permissions you granted."},
}

// vehiclesUnavailable is the account page's note for any other failure of the vehicle list.
const vehiclesUnavailable = "Tesla isn't answering right now, so we can't show your vehicles. Your connection is fine; try again later."
