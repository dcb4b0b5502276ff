// Package templates holds the owner-facing HTML pages (templ components) and
// the plain view-model structs handlers fill in to render them.
package templates

import "time"

// Base carries what every page needs: naming, the stylesheet, the signed-in
// state and the CSRF token for the header's forms.
type Base struct {
	// ServiceName is the operator's configured name, shown in the header and in consent wording.
	ServiceName string
	// Title is the page title without the service name; the layout appends it.
	Title string
	// CSSPath is the stylesheet URL, e.g. "/static/app.css?v=hash".
	CSSPath string
	// FaviconPath is the icon URL, e.g. "/static/favicon.svg?v=hash"; empty omits the link.
	FaviconPath string
	// SignedIn shows the "Your account" link in the header.
	SignedIn bool
	// CSRFToken is put in a hidden "csrf" input of every form.
	CSRFToken string
	// Path is where the language switcher returns to (this page's path and
	// query); empty returns to "/".
	Path string
	// TeslaReachable false shows a calm "Tesla can't be reached right now" banner.
	// The zero value shows the banner: set it on every page.
	TeslaReachable bool
}

// ScopeInfo describes one Tesla OAuth scope in plain words.
type ScopeInfo struct {
	// Name is Tesla's scope string, e.g. "vehicle_cmds".
	Name string
	// Title is a short plain-language name, e.g. "Vehicle commands".
	Title string
	// Description is one line on what the scope allows.
	Description string
	// Control is true for scopes that act (commands, settings), false for read-only ones.
	Control bool
	// Checked pre-selects the checkbox on the connect page.
	Checked bool
	// Fixed marks scopes that are always included (openid, offline_access).
	Fixed bool
	// New marks a scope the owner's existing connection does not have yet.
	New bool
}

// LandingPage is GET /.
type LandingPage struct {
	Base
}

// ConnectPage is GET /connect: the scope choice before Tesla's sign-in.
type ConnectPage struct {
	Base
	// Scopes are the optional scopes offered, each with its checkbox state.
	Scopes []ScopeInfo
	// Always are the scopes always requested (openid, offline_access), listed without inputs.
	Always []ScopeInfo
	// Relink is the "change permissions" mode reached from the account page.
	Relink bool
	// ErrorSummary, when set, is shown in an error summary above the form.
	ErrorSummary string
}

// Vehicle is one vehicle from Tesla's vehicle list.
type Vehicle struct {
	DisplayName string
	VIN         string
	// State is Tesla's state word: "online", "asleep" or "offline".
	State string
}

// Usage is the last time one API client obtained a token for the link.
type Usage struct {
	ClientName string
	At         time.Time
}

// AccountPage is GET /account.
type AccountPage struct {
	Base
	Email string
	Name  string
	// Region is the display name, see RegionName.
	Region string
	// Status is "active", "needs_reauth" or "revoked".
	Status string
	// StatusReason is an optional plain sentence on why the status is what it is.
	StatusReason string
	// Granted are the scopes Tesla granted (Fixed ones may be included).
	Granted []ScopeInfo
	// Missing are the scopes asked for but not granted.
	Missing []ScopeInfo
	// LinkedAt, RefreshedAt and LastUsedAt: the zero value means never.
	LinkedAt    time.Time
	RefreshedAt time.Time
	LastUsedAt  time.Time
	// LastUsedBy lists the latest use per API client, most recent first.
	LastUsedBy []Usage
	// VehiclesShown is true when the vehicle section should appear at all
	// (the vehicle data scope was granted).
	VehiclesShown bool
	Vehicles      []Vehicle
	// VehiclesNote replaces the list with a friendly sentence when Tesla
	// could not list the vehicles (unreachable, 412, 421).
	VehiclesNote string
	// Activity is the page of the link's history being shown.
	Activity Activity
	// Now is the reference time for "3 days ago" wording.
	Now time.Time
}

// RevokeConfirmPage is GET /account/revoke: the one destructive action, asked once more.
type RevokeConfirmPage struct {
	Base
	// Email names the Tesla account being disconnected; may be empty.
	Email string
}

// RevokedPage confirms a revoke (the answer to POST /account/revoke).
type RevokedPage struct {
	Base
	// TeslaRevokeURL is Tesla's consent-revocation page for this client.
	TeslaRevokeURL string
}

// SignedOutPage confirms a sign-out, and is shown for ended sessions.
type SignedOutPage struct {
	Base
}

// ErrorPage is every owner-facing failure: what happened, what to do, a reference.
type ErrorPage struct {
	Base
	// Status is the HTTP status (shown nowhere; handlers use it for the response).
	Status int
	// Heading is the h1, e.g. "You did not allow access".
	Heading string
	// Message says what happened and what the owner can do, in plain words.
	Message string
	// RetryURL is the "Try again" link target; empty omits it.
	RetryURL string
	// Reference is the short id that is also in the log; empty omits it.
	Reference string
}

// ActivityEntry is one thing that happened to the owner's link.
type ActivityEntry struct {
	// Kind is "linked", "renewed", "reconnected", "scopes_changed",
	// "refreshed", "used", "needs_reauth" or "revoked".
	Kind string
	At   time.Time
	// Scopes are the permissions granted (linked, reconnected).
	Scopes []ScopeInfo
	// Added and Removed are what a permission change added and removed.
	Added, Removed []ScopeInfo
	// Actor is who did it: "owner", "api", "tesla" or "system".
	Actor string
	// Client names the team service (used; revoked by "api").
	Client string
	// Count is how many times it happened that day (refreshed).
	Count int64
	// Reason is why Tesla asked to reconnect: "refresh_refused" or "other_account".
	Reason string
}

// Activity is one page of the account page's activity list, newest first.
type Activity struct {
	Entries []ActivityEntry
	// Page is the 1-based page number.
	Page int
	// NewerURL and OlderURL link to the neighbouring pages; empty on the first and last.
	NewerURL, OlderURL string
}

// DeleteConfirmPage is GET /account/delete: erasing everything, asked once more.
type DeleteConfirmPage struct {
	Base
	// Email names the Tesla account; may be empty.
	Email string
}

// DeletedPage confirms an erase and says what was deleted.
type DeletedPage struct {
	Base
	Links, Tokens, Sessions, Activity int
	// TeslaRevokeURL is Tesla's consent-revocation page for this client.
	TeslaRevokeURL string
}

// LinkSessionPage is GET /link/{id}: a team's app asks the owner to connect.
type LinkSessionPage struct {
	Base
	// Action is the form's target (the session's own address).
	Action string
	// ClientName is the display name of the team's app that asked.
	ClientName string
	// Scopes are the scopes the app asks for, each ticked; New marks those
	// the owner's existing connection lacks.
	Scopes []ScopeInfo
	// Kept are scopes the existing connection has and keeps (not asked for again).
	Kept []ScopeInfo
	// Always are openid and offline_access.
	Always []ScopeInfo
	// Upgrade is true when the owner already has a connection: the page then
	// says which permissions are new.
	Upgrade bool
}
