package teslasim

import (
	"path/filepath"
	"testing"
	"time"
)

// TestStateSurvivesRestart: with a StateFile, a restarted simulator (even
// one that generated a new key) still knows yesterday's link: the current
// refresh token refreshes, the last used one keeps its grace, live access
// tokens work at the Fleet API, ID tokens verify with the published keys,
// and an advanced clock stays advanced.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sim.json")
	clock1 := NewRunningClock()
	s1 := newSim(t, func(c *Config) { c.StateFile = file; c.Clock = clock1 })
	first := linked(t, s1, "ada@example.com")
	second := refresh(t, s1, first.str("refresh_token"))
	if second.status != 200 {
		t.Fatalf("refresh: %d", second.status)
	}
	clock1.Advance(time.Hour)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	clock2 := NewRunningClock()
	s2 := newSim(t, func(c *Config) { c.StateFile = file; c.Clock = clock2; c.SigningKey = nil })
	if off := clock2.Offset(); off != time.Hour {
		t.Errorf("clock offset after restart: %v", off)
	}
	if st, _ := fleetGet(t, s2, "na", "/api/1/users/me", second.str("access_token")); st != 200 {
		t.Errorf("access token after restart: %d", st)
	}
	// The first refresh token is the last used one: still in its grace.
	if r := refresh(t, s2, first.str("refresh_token")); r.status != 200 {
		t.Fatalf("grace refresh after restart: %d %v", r.status, r.body)
	} else if err := verifyID(t, s2, r.str("id_token"), "nonce-123"); err != nil {
		t.Errorf("ID token after restart: %v", err)
	}
	if s2.OwnerSub("ada@example.com") == "" || len(s2.RegisteredDomains("na")) != 0 {
		t.Error("owner lost")
	}

	// Without a state file, a restart forgets everything (as before).
	s3 := newSim(t)
	if r := refresh(t, s3, second.str("refresh_token")); r.status != 401 {
		t.Errorf("a simulator without state accepted a foreign refresh token: %d", r.status)
	}
}
