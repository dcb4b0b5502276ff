package teslasim

import (
	"sync"
	"testing"
	"time"
)

func TestRefreshRotationAndGrace(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "hal@example.com")
	rtA := a.str("refresh_token")

	b := refresh(t, s, rtA)
	if b.status != 200 || b.str("refresh_token") == rtA || b.str("id_token") == "" || b.str("access_token") == "" {
		t.Fatalf("refresh A: %d %v", b.status, b.body)
	}
	_, idA := claims(t, a.str("id_token"))
	_, idB := claims(t, b.str("id_token"))
	if idA["sub"] != idB["sub"] || idA["iss"] != idB["iss"] {
		t.Error("refresh ID token must keep iss and sub")
	}
	// A was the most recently used: it still works within 24 hours.
	s.Clock().Advance(23 * time.Hour)
	c := refresh(t, s, rtA)
	if c.status != 200 {
		t.Fatalf("A within grace: %d %v", c.status, c.body)
	}
	// B was cycled out by that refresh and was never used.
	if r := refresh(t, s, b.str("refresh_token")); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("cycled-out B: %d %v", r.status, r.body)
	}
	// After 24 hours from its use, A is dead.
	s.Clock().Advance(2 * time.Hour)
	if r := refresh(t, s, rtA); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("A after grace: %d %v", r.status, r.body)
	}
	// C is current and works; then C is the last used and D is current.
	d := refresh(t, s, c.str("refresh_token"))
	if d.status != 200 {
		t.Fatalf("C: %d", d.status)
	}
	e := refresh(t, s, d.str("refresh_token"))
	if e.status != 200 {
		t.Fatalf("D: %d", e.status)
	}
	// C is now older than the most recently used (D): login_required.
	if r := refresh(t, s, c.str("refresh_token")); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("older C: %d %v", r.status, r.body)
	}
	if r := refresh(t, s, "NA_unknown"); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("unknown: %d", r.status)
	}
}

func TestRefreshTokenExpiresAfterThreeMonths(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "ida@example.com")
	s.Clock().Advance(89 * 24 * time.Hour)
	b := refresh(t, s, a.str("refresh_token"))
	if b.status != 200 {
		t.Fatalf("at 89 days: %d", b.status)
	}
	s.Clock().Advance(91 * 24 * time.Hour)
	if r := refresh(t, s, b.str("refresh_token")); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("after 3 months: %d %v", r.status, r.body)
	}
}

func TestRefreshInvalidatesOldAccessTokens(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		s := newSim(t, func(c *Config) { c.KeepOldAccessTokens = keep })
		a := linked(t, s, "jon@example.com")
		b := refresh(t, s, a.str("refresh_token"))
		st, body := fleetGet(t, s, "na", "/api/1/users/me", a.str("access_token"))
		want := 401
		if keep {
			want = 200
		}
		if st != want {
			t.Errorf("keep=%v: old access token: %d %v, want %d", keep, st, body, want)
		}
		if st, _ := fleetGet(t, s, "na", "/api/1/users/me", b.str("access_token")); st != 200 {
			t.Errorf("keep=%v: new access token: %d", keep, st)
		}
	}
}

func TestRefreshClientChecksAndScopeChanges(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "kim@example.com")
	r := postForm(t, s.TokenURL(), map[string][]string{
		"grant_type": {"refresh_token"}, "client_id": {s.cfg.ClientID}, "client_secret": {"wrong"},
		"refresh_token": {a.str("refresh_token")},
	})
	if r.status != 401 || r.str("error") != "unauthorized_client" {
		t.Errorf("wrong secret on refresh: %d %v", r.status, r.body)
	}
	// Narrowing scopes outside the service applies to the next access token.
	s.SetGrantedScopes(s.OwnerSub("kim@example.com"), []string{"user_data"})
	b := refresh(t, s, a.str("refresh_token"))
	if b.status != 200 || b.str("scope") != "openid offline_access user_data" {
		t.Fatalf("after narrowing: %d %q", b.status, b.str("scope"))
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/vehicles", b.str("access_token")); st != 403 {
		t.Errorf("vehicles after narrowing: %d", st)
	}
}

func TestOmitScopeInTokenResponse(t *testing.T) {
	t.Parallel()
	s := newSim(t, func(c *Config) { c.OmitScopeInTokenResponse = true })
	a := linked(t, s, "lou@example.com")
	if _, ok := a.body["scope"]; ok {
		t.Error("scope present")
	}
	_, at := claims(t, a.str("access_token"))
	if scp, _ := at["scp"].([]any); len(scp) != 4 {
		t.Errorf("scp = %v", at["scp"])
	}
}

func TestConcurrentRefreshAndFleet(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := linked(t, s, "many"+string(rune('a'+i))+"@example.com")
			rt := a.str("refresh_token")
			for range 5 {
				r := refresh(t, s, rt)
				if r.status != 200 {
					t.Errorf("refresh: %d", r.status)
					return
				}
				rt = r.str("refresh_token")
				if st, _ := fleetGet(t, s, "na", "/api/1/vehicles", r.str("access_token")); st != 200 {
					t.Errorf("vehicles: %d", st)
				}
			}
		}()
	}
	wg.Wait()
	if got := s.Calls("token.refresh_token"); got != 40 {
		t.Errorf("refresh calls = %d", got)
	}
}
