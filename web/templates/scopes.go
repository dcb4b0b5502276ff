package templates

// ScopeCatalog returns every Tesla scope the service knows, in display
// order, with plain-language titles and descriptions. Wording follows Tesla's
// Fleet API scope table. A fresh slice is returned on each call.
func ScopeCatalog() []ScopeInfo {
	return []ScopeInfo{
		{Name: "openid", Title: "Sign in with Tesla",
			Description: "Confirms who you are using your Tesla account.", Fixed: true},
		{Name: "offline_access", Title: "Stay connected",
			Description: "Keeps access working without you signing in again, until you revoke it.", Fixed: true},
		{Name: "user_data", Title: "Profile",
			Description: "Your name, email, home address, profile picture and referral information."},
		{Name: "vehicle_device_data", Title: "Vehicle data",
			Description: "Live status such as battery and climate, ownership, available upgrades, nearby Superchargers and service scheduling."},
		{Name: "vehicle_location", Title: "Vehicle location",
			Description: "Where your vehicle is, precisely."},
		{Name: "energy_device_data", Title: "Energy data",
			Description: "Powerwall and solar live status, site details, backup history and energy history."},
		{Name: "vehicle_cmds", Title: "Vehicle commands",
			Description: "Lock and unlock, wake up, remote start, add or remove drivers, Live Camera and software update scheduling.", Control: true},
		{Name: "vehicle_charging_cmds", Title: "Charging",
			Description: "Charging history, amounts billed and locations, and start, stop or schedule charging.", Control: true},
		{Name: "energy_cmds", Title: "Energy settings",
			Description: "Change backup reserve, operation mode and storm mode.", Control: true},
	}
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
