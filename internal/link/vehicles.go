package link

import (
	"context"
	"errors"
	"sync"
	"time"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/fleet"
	"teslalink/internal/oidc"
	"teslalink/internal/seal"
)

// Vehicles lists the owner's vehicles through the Fleet API of the link's
// region, for the link l just read. A successful list is kept for a minute,
// and only for the access token it was fetched with: a refresh or re-link
// changes the stored token and the next call asks Tesla again (the Fleet
// API is rate-limited and billed per call). after is the link as it is
// afterwards (listing may refresh its token, or find it needs re-linking);
// it is nil when it could not be read.
func (s *Service) Vehicles(ctx context.Context, l *db.Link) (vs []fleet.Vehicle, after *db.Link, err error) {
	if vs, ok := s.vehicles.get(l.ID, tokenFingerprint(l.AccessTokenSealed), s.now()); ok {
		return vs, l, nil
	}
	tok, err := s.accessToken(ctx, l, TokenRequest{Scopes: []string{"vehicle_device_data"}})
	if err == nil {
		after = tok.Link
		vs, err = s.fleet.Vehicles(ctx, tok.FleetAPIBaseURL, tok.AccessToken)
	}
	if err != nil {
		// Read even when ctx ran out waiting for Tesla: the page shows the link's state.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		after, _ = s.store.GetLink(rctx, l.ID)
		cancel()
		return nil, after, vehiclesFailed(err)
	}
	s.vehicles.put(l.ID, tokenFingerprint(after.AccessTokenSealed), s.now(), vs)
	return vs, after, nil
}

// ListsVehicles reports whether Vehicles can work at all: the Fleet API accepts
// this service's access tokens (Tesla's own sign-in, or configured Fleet API
// URLs such as the simulator's), which a standard OpenID provider's do not.
func (s *Service) ListsVehicles() bool { return s.fleet.Usable() }

// vehiclesFailed translates a failed vehicle listing: the owner's page
// explains each of these differently.
func vehiclesFailed(err error) error {
	switch {
	case errors.Is(err, ErrTokenKeyMissing):
		return translate(err)
	case errors.Is(err, seal.ErrOpen) || errors.Is(err, seal.ErrUnknownKey):
		return apperr.New(apperr.StoredTokenUnusable, err)
	case oidc.KindOf(err) == oidc.KindNotRegistered:
		return apperr.New(apperr.FleetNotRegistered, err)
	case oidc.KindOf(err) == oidc.KindRegion:
		return apperr.New(apperr.FleetWrongRegion, err)
	case oidc.KindOf(err) == oidc.KindForbidden:
		return apperr.New(apperr.FleetForbidden, err)
	}
	return translate(err)
}

// vehicleCache keeps each link's last successful vehicle list.
type vehicleCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]vehicleEntry
}

type vehicleEntry struct {
	at       time.Time
	token    string // fingerprint of the sealed access token used
	vehicles []fleet.Vehicle
}

const vehicleCacheMax = 10000

func newVehicleCache(ttl time.Duration) *vehicleCache {
	return &vehicleCache{ttl: ttl, entries: map[string]vehicleEntry{}}
}

func (v *vehicleCache) get(linkID, token string, now time.Time) ([]fleet.Vehicle, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[linkID]
	if !ok || e.token != token || now.Sub(e.at) > v.ttl || now.Before(e.at) {
		return nil, false
	}
	return e.vehicles, true
}

func (v *vehicleCache) put(linkID, token string, now time.Time, vehicles []fleet.Vehicle) {
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
