// Package teslascope is the one list of the Tesla OAuth scopes teslalink
// knows. The configuration, the pages, the simulator and the tests all take
// it from here.
package teslascope

import "slices"

// The scopes, in Tesla's order.
const (
	OpenID              = "openid"
	OfflineAccess       = "offline_access"
	UserData            = "user_data"
	VehicleDeviceData   = "vehicle_device_data"
	VehicleLocation     = "vehicle_location"
	VehicleCmds         = "vehicle_cmds"
	VehicleChargingCmds = "vehicle_charging_cmds"
	EnergyDeviceData    = "energy_device_data"
	EnergyCmds          = "energy_cmds"
)

var (
	fixed    = []string{OpenID, OfflineAccess}
	optional = []string{UserData, VehicleDeviceData, VehicleLocation, VehicleCmds, VehicleChargingCmds, EnergyDeviceData, EnergyCmds}
	control  = []string{VehicleCmds, VehicleChargingCmds, EnergyCmds}
)

// Fixed returns the scopes requested on every login (sign-in and refresh tokens).
func Fixed() []string { return slices.Clone(fixed) }

// Optional returns the scopes an owner may choose.
func Optional() []string { return slices.Clone(optional) }

// All returns Fixed then Optional.
func All() []string { return slices.Concat(fixed, optional) }

// IsFixed reports whether s is requested on every login.
func IsFixed(s string) bool { return slices.Contains(fixed, s) }

// IsKnown reports whether s is a scope in this list.
func IsKnown(s string) bool { return IsFixed(s) || slices.Contains(optional, s) }

// IsControl reports whether s lets the service act (commands, settings),
// not only read.
func IsControl(s string) bool { return slices.Contains(control, s) }
