package teslasim

import (
	"strings"

	"teslalink/internal/teslascope"
)

// Scopes Tesla knows, in display order. openid and offline_access are fixed.
var knownScopes = teslascope.All()

var scopeLabels = map[string]string{
	"openid":                "Sign you in (always granted)",
	"offline_access":        "Stay connected when you are away (always granted)",
	"user_data":             "Profile information: name, email, profile picture",
	"vehicle_device_data":   "Vehicle information: status, charge level, settings",
	"vehicle_location":      "Vehicle location",
	"vehicle_cmds":          "Vehicle commands: lock, climate, trunk, ...",
	"vehicle_charging_cmds": "Vehicle charging management",
	"energy_device_data":    "Energy product information",
	"energy_cmds":           "Energy product settings",
}

func isFixedScope(s string) bool { return teslascope.IsFixed(s) }

func isKnownScope(s string) bool { return teslascope.IsKnown(s) }

// withFixedScopes returns scopes (deduplicated, in canonical order, unknown
// ones dropped) plus openid and offline_access.
func withFixedScopes(scopes []string) []string {
	set := map[string]bool{"openid": true, "offline_access": true}
	for _, s := range scopes {
		set[s] = true
	}
	return canonical(set)
}

func canonical(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for _, k := range knownScopes {
		if set[k] {
			out = append(out, k)
		}
	}
	return out
}

func hasScope(scopes []string, want string) bool {
	for _, s := range scopes {
		if s == want {
			return true
		}
	}
	return false
}

func splitScopes(s string) []string { return strings.Fields(s) }
