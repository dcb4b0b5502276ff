package teslasim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// OwnerSub returns the sub the sim uses for an email: the configured owner's
// Sub when set, otherwise a stable UUID-shaped value derived from the email.
func (s *Sim) OwnerSub(email string) string {
	return s.owner(email).Sub
}

// owner returns the (possibly configured) owner for an email, with defaults.
func (s *Sim) owner(email string) Owner {
	email = normEmail(email)
	var o Owner
	for _, c := range s.cfg.Owners {
		if normEmail(c.Email) == email {
			o = c
			break
		}
	}
	o.Email = email
	if o.Sub == "" {
		o.Sub = deriveSub(email)
	}
	if o.Region == "" {
		o.Region = regionFromEmail(email)
	}
	o.Region = strings.ToLower(o.Region)
	if o.Name == "" {
		local, _, _ := strings.Cut(email, "@")
		o.Name = "Sim Owner " + local
	}
	if len(o.Vehicles) == 0 {
		o.Vehicles = seedVehicles(o.Sub)
	}
	return o
}

// ownerBySub finds an owner by sub among configured owners and owners that
// signed in before.
func (s *Sim) ownerBySub(sub string) (Owner, bool) {
	s.mu.Lock()
	email, ok := s.emails[sub]
	s.mu.Unlock()
	if ok {
		return s.owner(email), true
	}
	for _, c := range s.cfg.Owners {
		if o := s.owner(c.Email); o.Sub == sub {
			return o, true
		}
	}
	return Owner{}, false
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func regionFromEmail(email string) string {
	local, _, _ := strings.Cut(email, "@")
	switch {
	case strings.HasSuffix(local, "+eu"):
		return "eu"
	case strings.HasSuffix(local, "+cn"):
		return "cn"
	}
	return "na"
}

func deriveSub(email string) string {
	h := sha256.Sum256([]byte("teslasim-sub:" + email))
	h[6] = h[6]&0x0f | 0x40 // UUID version 4 shape
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

var (
	vehicleNames  = []string{"Red Rocket", "Blue Thunder", "Silver Arrow", "Night Owl", "Sparky", "Roadrunner"}
	vehicleStates = []string{"online", "asleep", "offline"}
	vehicleModels = []string{"3", "Y", "S", "X"}
)

// seedVehicles derives 1 to 3 vehicles from a sub, deterministically.
func seedVehicles(sub string) []Vehicle {
	h := sha256.Sum256([]byte("teslasim-vehicles:" + sub))
	n := int(h[0]%3) + 1
	out := make([]Vehicle, 0, n)
	for i := range n {
		v := sha256.Sum256(append(h[:], byte(i)))
		id := int64(binary.BigEndian.Uint64(v[0:8])>>12) + 1
		vid := int64(binary.BigEndian.Uint64(v[8:16])>>28) + 1
		serial := binary.BigEndian.Uint64(v[16:24]) % 10000000
		out = append(out, Vehicle{
			ID:          id,
			VehicleID:   vid,
			VIN:         fmt.Sprintf("5YJ%sE1EA%dS%07d", vehicleModels[v[24]%4], v[25]%10, serial),
			DisplayName: vehicleNames[int(v[26])%len(vehicleNames)],
			State:       vehicleStates[int(v[27])%len(vehicleStates)],
		})
	}
	return out
}

// IssueRefreshToken creates, without a browser, the grant and refresh token
// an owner's login would have produced for the configured client: the
// owner (by email, as at sign-in) granted scopes (openid and
// offline_access are always added), and the returned refresh token is the
// current one of a new token family. It returns the owner's sub, which the
// ID tokens of later refreshes carry. Benchmarks use it to seed many links
// that refresh for real. The sim must have been started (the family's
// audience is its Fleet API base URL). With a StateFile, the new token is
// written with the next change made through HTTP, or at Close.
func (s *Sim) IssueRefreshToken(email string, scopes []string) (sub, refreshToken string, err error) {
	if s.URL() == "" {
		return "", "", fmt.Errorf("teslasim: IssueRefreshToken needs a started simulator")
	}
	o := s.owner(email)
	refresh := strings.ToUpper(o.Region) + "_" + randHex(32)
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails[o.Sub] = o.Email
	s.families++
	fam := &family{id: s.families, sub: o.Sub, client: s.cfg.ClientID, region: o.Region,
		audience: s.RegionBaseURL(o.Region), current: refresh}
	s.grantLocked(o.Sub, s.cfg.ClientID).scopes = withFixedScopes(scopes)
	s.refresh[refresh] = &refreshRec{fam: fam, expires: now.Add(s.cfg.RefreshTokenTTL)}
	s.rememberLocked(refresh)
	return o.Sub, refresh, nil
}
