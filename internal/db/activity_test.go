package db_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

func actions(evs []db.AuditEvent) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func TestSaveLinkRecordsWhatTheLoginChanged(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid", "user_data")
	saveLink(t, s, "sub-a", "openid", "user_data")                        // same scopes: signed in again
	saveLink(t, s, "sub-a", "openid", "user_data", "vehicle_device_data") // permissions changed
	if err := s.MarkNeedsReauth(ctx, l.ID, "login_required", []byte("r-"+l.ID)); err != nil {
		t.Fatal(err)
	}
	saveLink(t, s, "sub-a", "openid", "user_data", "vehicle_device_data") // reconnected
	if _, err := s.RevokeLink(ctx, l.ID, "api:crm"); err != nil {
		t.Fatal(err)
	}
	saveLink(t, s, "sub-a", "openid") // linked again after the revoke

	evs, err := s.AuditForLink(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{db.ActionLinked, db.ActionRenewed, db.ActionScopesChanged, db.ActionNeedsReauth, db.ActionReconnected,
		db.ActionRevoked, db.ActionLinked}
	if got := actions(evs); !slices.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	changed := evs[2].Detail
	if added, _ := changed["added"].([]any); len(added) != 1 || added[0] != "vehicle_device_data" {
		t.Errorf("scopes_changed added = %v", changed["added"])
	}
	if removed, _ := changed["removed"].([]any); len(removed) != 0 {
		t.Errorf("scopes_changed removed = %v", changed["removed"])
	}
	if evs[3].Detail["reason"] != "login_required" || evs[5].Actor != "api:crm" {
		t.Errorf("needs_reauth detail %v, revoke actor %q", evs[3].Detail, evs[5].Actor)
	}
}

func TestRefreshAndUseMakeOneEntryPerDay(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid", "user_data", "vehicle_location")
	day1 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	refresh := func(at time.Time, scopes ...string) {
		t.Helper()
		_, err := s.UpdateLinkLocked(ctx, l.ID, func(*db.Link) (*db.TokenUpdate, error) {
			return &db.TokenUpdate{Sealed: sealedFor(l.ID), AccessTokenExpiresAt: at.Add(8 * time.Hour), GrantedScopes: scopes, RefreshedAt: at}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	refresh(day1)
	refresh(day1.Add(8 * time.Hour))
	refresh(day1.Add(16*time.Hour), "openid", "user_data") // next day (01:00), and the owner untick location at Tesla

	c1, err := s.CreateAPIClient(ctx, "crm", "tlk_aaaa", []byte("hash-crm-0000000000000000000000000"), []string{"tokens:issue"})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s.CreateAPIClient(ctx, "billing", "tlk_bbbb", []byte("hash-bil-0000000000000000000000000"), []string{"tokens:issue"})
	if err != nil {
		t.Fatal(err)
	}
	use := func(c int64, at time.Time) {
		t.Helper()
		if err := s.RecordUsage(ctx, []db.Usage{{LinkID: l.ID, APIClientID: c, LastUsedAt: at}}); err != nil {
			t.Fatal(err)
		}
	}
	use(c1.ID, day1.Add(time.Hour))
	use(c1.ID, day1.Add(2*time.Hour))
	use(c2.ID, day1.Add(2*time.Hour))
	use(c1.ID, day1.Add(26*time.Hour))

	evs, more, err := s.OwnerActivity(ctx, l.OwnerID, 0, 50)
	if err != nil || more {
		t.Fatalf("activity: %v (more %v)", err, more)
	}
	type key struct {
		action, client, day string
		count               float64
	}
	var got []key
	for _, ev := range evs {
		if ev.Action != db.ActionRefreshed && ev.Action != db.ActionUsed {
			continue
		}
		n, _ := ev.Detail["count"].(float64)
		got = append(got, key{ev.Action, ev.ClientName, ev.Day.Format(time.DateOnly), n})
	}
	want := []key{ // newest first: in the order they were recorded
		{db.ActionUsed, "crm", "2026-03-02", 0}, // one entry per client and day, no count
		{db.ActionUsed, "billing", "2026-03-01", 0},
		{db.ActionUsed, "crm", "2026-03-01", 0},
		{db.ActionRefreshed, "", "2026-03-02", 1},
		{db.ActionRefreshed, "", "2026-03-01", 2},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("daily entries (newest first)\n got %v\nwant %v", got, want)
	}
	var changed *db.AuditEvent
	for i := range evs {
		if evs[i].Action == db.ActionScopesChanged {
			changed = &evs[i]
		}
	}
	if changed == nil || changed.Actor != "tesla" {
		t.Fatalf("no scopes_changed by tesla after a refresh that narrowed the scopes: %v", actions(evs))
	}
	if removed, _ := changed.Detail["removed"].([]any); len(removed) != 1 || removed[0] != "vehicle_location" {
		t.Errorf("removed = %v", changed.Detail["removed"])
	}
	// Pages: newest first, no overlap, "more" until the end.
	first, more, _ := s.OwnerActivity(ctx, l.OwnerID, 0, 3)
	second, more2, _ := s.OwnerActivity(ctx, l.OwnerID, 3, 50)
	if !more || more2 || len(first) != 3 || len(first)+len(second) != len(evs) || first[0].ID != evs[0].ID || second[0].ID != evs[3].ID {
		t.Errorf("pages: %d (+%v) then %d (+%v) of %d", len(first), more, len(second), more2, len(evs))
	}
}

func TestDeleteActivityBefore(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid")
	old := time.Now().AddDate(-2, 0, 0)
	for range 7 {
		if err := s.AddAudit(ctx, db.AuditEvent{At: old, OwnerID: l.OwnerID, LinkID: l.ID, Actor: "system", Action: db.ActionNeedsReauth}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteActivityBefore(ctx, time.Now().AddDate(-1, 0, 0), 3)
	if err != nil || n != 7 {
		t.Fatalf("deleted %d, %v; want 7", n, err)
	}
	evs, _, _ := s.OwnerActivity(ctx, l.OwnerID, 0, 50)
	if got := actions(evs); !slices.Equal(got, []string{db.ActionLinked}) {
		t.Fatalf("left %v, want only the recent link.created", got)
	}
}

func TestEraseOwnerDeletesEverything(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	s, err := db.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	a := saveLink(t, s, "sub-a", "openid")
	b := saveLink(t, s, "sub-b", "openid")
	c, err := s.CreateAPIClient(ctx, "crm", "tlk_aaaa", []byte("hash-crm-0000000000000000000000000"), []string{"tokens:issue"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, []db.Usage{{LinkID: a.ID, APIClientID: c.ID, LastUsedAt: time.Now()},
		{LinkID: b.ID, APIClientID: c.ID, LastUsedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []int64{a.OwnerID, a.OwnerID, b.OwnerID} {
		if err := s.CreateSession(ctx, db.Session{IDHash: []byte(time.Now().String()), OwnerID: owner, Data: []byte("x"), CreatedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	erased, err := s.EraseOwner(ctx, a.OwnerID)
	if err != nil {
		t.Fatal(err)
	}
	if erased.OwnerSub != "sub-a" || !slices.Equal(erased.LinkIDs, []string{a.ID}) || erased.Tokens != 2 ||
		erased.Sessions != 2 || erased.Activity != 2 || erased.Usage != 1 {
		t.Fatalf("erased %+v", erased)
	}
	for table, where := range map[string]string{
		"owners": "id = $1", "links": "owner_id = $1", "sessions": "owner_id = $1", "activity": "owner_id = $1",
		"link_usage": "link_id IN (SELECT id FROM links WHERE owner_id = $1)",
	} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+where, a.OwnerID).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows left, %v", table, n, err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+where, b.OwnerID).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s: the other owner's rows are gone (%v)", table, err)
		}
	}
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM activity t`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, a.ID) {
		t.Errorf("activity still names the erased link")
	}
	if _, err := s.EraseOwner(ctx, a.OwnerID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("second erase: %v, want ErrNotFound", err)
	}
}
