package templates

import "teslalink/internal/teslascope"

// scopeWords are the plain-language title and description of each scope
// in teslascope's list. Wording follows Tesla's Fleet API scope table.
var scopeWords = map[string][2]string{
	teslascope.OpenID:        {"Sign in with Tesla", "Confirms who you are using your Tesla account."},
	teslascope.OfflineAccess: {"Stay connected", "Keeps access working without you signing in again, until you revoke it."},
	teslascope.UserData:      {"Profile", "Your name, email, home address, profile picture and referral information."},
	teslascope.VehicleDeviceData: {"Vehicle data",
		"Live status such as battery and climate, ownership, available upgrades, nearby Superchargers and service scheduling."},
	teslascope.VehicleLocation:  {"Vehicle location", "Where your vehicle is, precisely."},
	teslascope.EnergyDeviceData: {"Energy data", "Powerwall and solar live status, site details, backup history and energy history."},
	teslascope.VehicleCmds: {"Vehicle commands",
		"Lock and unlock, wake up, remote start, add or remove drivers, Live Camera and software update scheduling."},
	teslascope.VehicleChargingCmds: {"Charging",
		"Charging history, amounts billed and locations, and start, stop or schedule charging."},
	teslascope.EnergyCmds: {"Energy settings", "Change backup reserve, operation mode and storm mode."},
}

// ScopeCatalog returns every Tesla scope the service knows (teslascope's
// list), in display order: the fixed ones, then what the service may read,
// then what lets it act. A fresh slice is returned on each call.
func ScopeCatalog() []ScopeInfo {
	all := teslascope.All()
	out := make([]ScopeInfo, 0, len(all))
	for _, pass := range []func(string) bool{teslascope.IsFixed,
		func(n string) bool { return !teslascope.IsFixed(n) && !teslascope.IsControl(n) }, teslascope.IsControl} {
		for _, n := range all {
			if pass(n) {
				w := scopeWords[n]
				out = append(out, ScopeInfo{Name: n, Title: w[0], Description: w[1], Fixed: teslascope.IsFixed(n),
					Control: teslascope.IsControl(n)})
			}
		}
	}
	return out
}

// LookupScope returns the catalog entry for a scope name. Unknown names
// come back with the name as title and ok false, so nothing is ever shown
// without at least a label.
func LookupScope(name string) (ScopeInfo, bool) {
	for _, s := range ScopeCatalog() {
		if s.Name == name {
			return s, true
		}
	}
	return ScopeInfo{Name: name, Title: name, Description: "A permission this service does not describe yet."}, false
}

// ScopesFor maps scope names to catalog entries, in catalog order, with
// unknown names appended in the given order. Duplicates are dropped.
func ScopesFor(names []string) []ScopeInfo {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make([]ScopeInfo, 0, len(want))
	for _, s := range ScopeCatalog() {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for _, n := range names {
		if want[n] {
			s, _ := LookupScope(n)
			out = append(out, s)
			delete(want, n)
		}
	}
	return out
}

// ConnectScopes builds the connect page's two lists: the offered optional
// scopes (checked when in checked) and the always-included ones.
func ConnectScopes(offered, checked []string) (optional, always []ScopeInfo) {
	isChecked := make(map[string]bool, len(checked))
	for _, n := range checked {
		isChecked[n] = true
	}
	for _, s := range ScopesFor(offered) {
		if s.Fixed {
			continue
		}
		s.Checked = isChecked[s.Name]
		optional = append(optional, s)
	}
	for _, s := range ScopeCatalog() {
		if s.Fixed {
			always = append(always, s)
		}
	}
	return optional, always
}

// RegionName turns a region code ("na", "eu", "cn") into the name owners
// know from Tesla; unknown codes are returned unchanged.
func RegionName(code string) string {
	switch code {
	case "na":
		return "North America & Asia-Pacific"
	case "eu":
		return "Europe, Middle East & Africa"
	case "cn":
		return "China"
	}
	return code
}

// scopeGroups splits scopes into read, control and always-included lists
// for display.
func scopeGroups(scopes []ScopeInfo) (read, control, fixed []ScopeInfo) {
	for _, s := range scopes {
		switch {
		case s.Fixed:
			fixed = append(fixed, s)
		case s.Control:
			control = append(control, s)
		default:
			read = append(read, s)
		}
	}
	return read, control, fixed
}
