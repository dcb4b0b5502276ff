package templates

import (
	"time"

	"github.com/a-h/templ"
)

// sampleNow is the fixed clock for all sample pages.
var sampleNow = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func sampleBase(title string, signedIn bool) Base {
	return Base{
		ServiceName:    "Acme Fleet",
		Title:          title,
		CSSPath:        "/static/app.css?v=abc123",
		FaviconPath:    "/static/favicon.svg?v=abc123",
		SignedIn:       signedIn,
		CSRFToken:      "csrf-token-value",
		TeslaReachable: true,
	}
}

func sampleAccount() AccountPage {
	return AccountPage{
		Base:        sampleBase("Your account", true),
		Email:       "ada.lovelace@example.com",
		Name:        "Ada Lovelace",
		Region:      RegionName("eu"),
		Status:      "active",
		Granted:     ScopesFor([]string{"openid", "offline_access", "user_data", "vehicle_device_data", "vehicle_cmds"}),
		Missing:     ScopesFor([]string{"vehicle_location", "vehicle_charging_cmds"}),
		LinkedAt:    sampleNow.Add(-3 * 24 * time.Hour),
		RefreshedAt: sampleNow.Add(-2 * time.Hour),
		LastUsedAt:  sampleNow.Add(-5 * time.Minute),
		LastUsedBy: []Usage{
			{ClientName: "fleet-dashboard", At: sampleNow.Add(-5 * time.Minute)},
			{ClientName: "charging-scheduler", At: sampleNow.Add(-26 * time.Hour)},
		},
		VehiclesShown: true,
		Vehicles: []Vehicle{
			{DisplayName: "Blue Thunder", VIN: "5YJ3E1EA7KF000001", State: "online"},
			{DisplayName: "", VIN: "LRW3E7FS2NC000002", State: "asleep"},
		},
		Activity: sampleActivity(),
		Now:      sampleNow,
	}
}

// sampleActivity is a full page of every kind of entry, with both page links.
func sampleActivity() Activity {
	kinds := []ActivityEntry{
		{Kind: "used", Client: "fleet-dashboard", Actor: "api", Count: 12},
		{Kind: "refreshed", Actor: "system", Count: 3},
		{Kind: "scopes_changed", Actor: "tesla", Removed: ScopesFor([]string{"vehicle_location"})},
		{Kind: "scopes_changed", Actor: "owner", Added: ScopesFor([]string{"vehicle_cmds"}), Removed: ScopesFor([]string{"energy_device_data"})},
		{Kind: "needs_reauth", Actor: "system", Reason: "refresh_refused"},
		{Kind: "reconnected", Actor: "owner", Scopes: ScopesFor([]string{"openid", "user_data", "vehicle_device_data"})},
		{Kind: "revoked", Actor: "api", Client: "charging-scheduler"},
		{Kind: "revoked", Actor: "owner"},
		{Kind: "renewed", Actor: "owner"},
		{Kind: "used", Client: "charging-scheduler", Actor: "api", Count: 1},
		{Kind: "linked", Actor: "owner", Scopes: ScopesFor([]string{"openid", "offline_access", "user_data", "vehicle_device_data", "vehicle_location"})},
	}
	a := Activity{Page: 2, NewerURL: "/account#activity-section", OlderURL: "/account?page=3#activity-section"}
	for i := range 20 {
		e := kinds[i%len(kinds)]
		e.At = sampleNow.Add(-time.Duration(i*i+1) * 37 * time.Minute)
		a.Entries = append(a.Entries, e)
	}
	return a
}

// samplePages returns one rendering of every page and state, by file name.
func samplePages() map[string]templ.Component {
	optional, always := ConnectScopes(
		[]string{"user_data", "vehicle_device_data", "vehicle_location", "vehicle_cmds", "vehicle_charging_cmds", "energy_device_data", "energy_cmds"},
		[]string{"user_data", "vehicle_device_data"})

	reauth := sampleAccount()
	reauth.Status = "needs_reauth"
	reauth.StatusReason = "Tesla ended the session on 12 March."
	reauth.Base.TeslaReachable = false
	reauth.Vehicles = nil
	reauth.VehiclesNote = "Tesla can't list your vehicles right now. They will show here again once Tesla answers."
	reauth.Missing = nil
	reauth.LastUsedBy = nil

	relink := ConnectPage{Base: sampleBase("Change permissions", true), Scopes: optional, Always: always, Relink: true,
		ErrorSummary: "Something went wrong. Choose your permissions and try again."}

	return map[string]templ.Component{
		"landing":        Landing(LandingPage{Base: sampleBase("", false)}),
		"connect":        Connect(ConnectPage{Base: sampleBase("Choose permissions", false), Scopes: optional, Always: always}),
		"connect-relink": Connect(relink),
		"account":        Account(sampleAccount()),
		"account-reauth": Account(reauth),
		"revoke-confirm": RevokeConfirm(RevokeConfirmPage{Base: sampleBase("Revoke access", true), Email: "ada.lovelace@example.com"}),
		"revoked": Revoked(RevokedPage{Base: sampleBase("Access revoked", false),
			TeslaRevokeURL: "https://auth.tesla.com/user/revoke/consent?revoke_client_id=abc&back_url=https%3A%2F%2Fexample.com%2F"}),
		"signed-out":     SignedOut(SignedOutPage{Base: sampleBase("Signed out", false)}),
		"delete-confirm": DeleteConfirm(DeleteConfirmPage{Base: sampleBase("Delete everything", true), Email: "ada.lovelace@example.com"}),
		"deleted": Deleted(DeletedPage{Base: sampleBase("Everything is deleted", false), Links: 1, Tokens: 2, Sessions: 1, Activity: 57,
			TeslaRevokeURL: "https://auth.tesla.com/user/revoke/consent?revoke_client_id=abc&back_url=https%3A%2F%2Fexample.com%2F"}),
		"error": Error(ErrorPage{Base: sampleBase("You did not allow access", false), Status: 403,
			Heading: "You did not allow access", Message: "You chose not to share your Tesla account, so nothing was linked. You can connect whenever you like.",
			RetryURL: "/connect", Reference: "k3x9q2"}),
	}
}
