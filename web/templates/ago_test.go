package templates

import (
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now, "just now"},
		{now.Add(-59 * time.Second), "just now"},
		{now.Add(time.Hour), "just now"}, // clock skew
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-5*time.Minute - 30*time.Second), "5 minutes ago"},
		{now.Add(-time.Hour), "1 hour ago"},
		{now.Add(-23 * time.Hour), "23 hours ago"},
		{now.Add(-25 * time.Hour), "yesterday"},
		{now.Add(-3 * 24 * time.Hour), "3 days ago"},
		{now.Add(-29 * 24 * time.Hour), "29 days ago"},
		{now.Add(-45 * 24 * time.Hour), "1 month ago"},
		{now.Add(-200 * 24 * time.Hour), "6 months ago"},
		{now.Add(-366 * 24 * time.Hour), "1 year ago"},
		{now.Add(-3 * 366 * 24 * time.Hour), "3 years ago"},
	}
	for _, c := range cases {
		if got := Ago(now, c.t); got != c.want {
			t.Errorf("Ago(now, now-%v) = %q, want %q", now.Sub(c.t), got, c.want)
		}
	}
}

func TestCapitalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "never": "Never", "3 days ago": "3 days ago", "Já": "Já"} {
		if got := capitalize(in); got != want {
			t.Errorf("capitalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	cat := ScopeCatalog()
	if len(cat) != 9 {
		t.Fatalf("catalog has %d scopes, want 9", len(cat))
	}
	control := map[string]bool{"vehicle_cmds": true, "vehicle_charging_cmds": true, "energy_cmds": true}
	fixed := map[string]bool{"openid": true, "offline_access": true}
	for _, s := range cat {
		if s.Title == "" || s.Description == "" {
			t.Errorf("%s lacks words", s.Name)
		}
		if s.Control != control[s.Name] || s.Fixed != fixed[s.Name] {
			t.Errorf("%s: Control=%v Fixed=%v", s.Name, s.Control, s.Fixed)
		}
	}
	got := ScopesFor([]string{"vehicle_cmds", "made_up", "user_data", "user_data"})
	if len(got) != 3 || got[0].Name != "user_data" || got[1].Name != "vehicle_cmds" || got[2].Name != "made_up" || got[2].Title != "made_up" {
		t.Errorf("ScopesFor = %+v", got)
	}
	opt, always := ConnectScopes([]string{"openid", "energy_cmds", "user_data"}, []string{"user_data"})
	if len(opt) != 2 || opt[0].Name != "user_data" || !opt[0].Checked || opt[1].Checked || len(always) != 2 {
		t.Errorf("ConnectScopes = %+v, %+v", opt, always)
	}
	if RegionName("na") != "North America & Asia-Pacific" || RegionName("xx") != "xx" {
		t.Error("RegionName")
	}
}
