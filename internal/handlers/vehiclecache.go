package handlers

import (
	"sync"
	"time"

	"teslalink/web/templates"
)

// vehicleCache keeps each link's vehicle list for a short while, so reloading
// the account page does not call Tesla's Fleet API (rate-limited and billed
// per call) every time. Only successful answers are kept, and only for the
// access token they were fetched with: a refresh, re-link or anything else
// that changes the stored token makes the next view ask Tesla again.
type vehicleCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]vehicleEntry
}

type vehicleEntry struct {
	at       time.Time
	token    string // fingerprint of the sealed access token used
	vehicles []templates.Vehicle
}

const vehicleCacheMax = 10000

func newVehicleCache(ttl time.Duration) *vehicleCache {
	return &vehicleCache{ttl: ttl, entries: map[string]vehicleEntry{}}
}

func (v *vehicleCache) get(linkID, token string, now time.Time) ([]templates.Vehicle, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[linkID]
	if !ok || e.token != token || now.Sub(e.at) > v.ttl || now.Before(e.at) {
		return nil, false
	}
	return e.vehicles, true
}

func (v *vehicleCache) put(linkID, token string, now time.Time, vehicles []templates.Vehicle) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.entries) >= vehicleCacheMax {
		clear(v.entries)
	}
	v.entries[linkID] = vehicleEntry{at: now, token: token, vehicles: vehicles}
}

func (v *vehicleCache) forget(linkID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.entries, linkID)
}

// tokenFingerprint identifies a sealed token without holding it: the last 16
// bytes are the AES-GCM tag, unique to each seal.
func tokenFingerprint(sealed []byte) string {
	if len(sealed) < 16 {
		return string(sealed)
	}
	return string(sealed[len(sealed)-16:])
}
