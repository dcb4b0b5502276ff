package owner_test

import (
	"context"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/owner"
	"teslalink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParseRetention(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"13mo":  time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC), // 2025-02-31 normalises like time.AddDate
		"1mo":   time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC),
		"400d":  now.Add(-400 * 24 * time.Hour),
		"2160h": now.Add(-2160 * time.Hour),
	} {
		r, err := owner.ParseRetention(in)
		if err != nil || !r.Cutoff(now).Equal(want) {
			t.Errorf("%s: cutoff %v, %v; want %v", in, r.Cutoff(now), err, want)
		}
	}
	for _, bad := range []string{"", "0mo", "-1mo", "13", "13m0", "1.5mo", "0d", "x", "-5h", "0s"} {
		if _, err := owner.ParseRetention(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := owner.DefaultRetention.Cutoff(now); !got.Equal(now.AddDate(0, -13, 0)) {
		t.Errorf("default cutoff %v, want 13 months back", got)
	}
}

func TestCleanupActivityKeepsTheRetentionPeriod(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l, err := s.SaveLink(ctx, db.LinkGrant{Sub: "sub-a", GrantedScopes: []string{"openid"}},
		func(string) (db.SealedTokens, error) {
			return db.SealedTokens{KeyID: "k", Refresh: []byte("r"), Access: []byte("a")}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, age := range []time.Duration{400 * 24 * time.Hour, 380 * 24 * time.Hour, 30 * 24 * time.Hour} {
		if err := s.AddAudit(ctx, db.AuditEvent{At: now.Add(-age), OwnerID: l.OwnerID, LinkID: l.ID, Actor: "owner", Action: db.ActionRenewed}); err != nil {
			t.Fatal(err)
		}
	}
	svc := owner.New(owner.Config{Store: s, Now: func() time.Time { return now }})
	n, err := svc.CleanupActivity(ctx)
	if err != nil || n != 1 {
		t.Fatalf("default retention deleted %d, %v; want the 400-day-old entry only", n, err)
	}
	svc = owner.New(owner.Config{Store: s, Now: func() time.Time { return now }, Retention: owner.Retention{Duration: 90 * 24 * time.Hour}})
	if n, err := svc.CleanupActivity(ctx); err != nil || n != 1 {
		t.Fatalf("90-day retention deleted %d, %v; want 1", n, err)
	}
	page, err := svc.Activity(ctx, l.OwnerID, 1)
	if err != nil || len(page.Entries) != 2 || page.More {
		t.Fatalf("left %+v, %v", page, err)
	}
}
