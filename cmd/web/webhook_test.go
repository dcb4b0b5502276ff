package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

var secretRe = regexp.MustCompile(`whsec_[A-Za-z0-9+/]{43}=`)

// TestWebhookCommands adds, lists and removes endpoints and shows
// deliveries, against a real PostgreSQL.
func TestWebhookCommands(t *testing.T) {
	url := pgtest.URL(t)
	t.Setenv("DATABASE_URL", url)

	code, out, errs := runCmd("webhook", "add", "https://hooks.example.com/tesla?team=1", "--events", "link.revoked,link.reauth_required")
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errs)
	}
	secret := secretRe.FindString(out)
	if secret == "" || !strings.Contains(out, "shown only this once") {
		t.Fatalf("add output: %s", out)
	}
	if code, out, _ := runCmd("webhook", "add", "https://all.example.com/"); code != 0 || !strings.Contains(out, "every event") {
		t.Fatalf("add without --events: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"webhook", "add", "ftp://example.com/x"},
		{"webhook", "add", "not a url"},
		{"webhook", "add", "https://example.com/", "--events", "link.exploded"},
		{"webhook", "add"},
		{"webhook", "remove", "abc"},
		{"webhook", "deliveries", "--limit", "0"},
		{"webhook", "frobnicate"},
	} {
		if code, _, errs := runCmd(bad...); code != exitConfig || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want a configuration error", bad, code, errs)
		}
	}

	code, out, _ = runCmd("webhook", "list")
	if code != 0 || !strings.Contains(out, "https://hooks.example.com/tesla?team=1") || !strings.Contains(out, "link.revoked,link.reauth_required") ||
		!strings.Contains(out, "https://all.example.com/") || strings.Contains(out, "whsec_") {
		t.Fatalf("list: %d %s", code, out)
	}

	// A failing endpoint and its deliveries, as the delivery worker records them.
	ctx := context.Background()
	store, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eps, _ := store.ListWebhookEndpoints(ctx)
	if len(eps) != 2 || eps[0].Secret != secret {
		t.Fatalf("stored endpoints %+v", eps)
	}
	l, err := store.SaveLink(ctx, db.LinkGrant{Sub: "sub-1", Region: "na", GrantedScopes: []string{"openid"}},
		func(string) (db.SealedTokens, error) {
			return db.SealedTokens{KeyID: "k", Refresh: []byte("r"), Access: []byte("a")}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := db.InsertEvent(ctx, tx, db.EventRecord{MsgID: "msg_test1", Type: db.EventLinkRevoked, LinkID: l.ID, Body: []byte(`{}`)})
	if err != nil || len(ids) != 2 || tx.Commit(ctx) != nil {
		t.Fatalf("insert event: %v %v", ids, err)
	}
	now := time.Now()
	if err := store.RecordWebhookAttempt(ctx, ids[0], db.WebhookAttempt{At: now, StatusCode: 503, Latency: 120 * time.Millisecond,
		Error: "answered 503"}, false, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordWebhookAttempt(ctx, ids[1], db.WebhookAttempt{At: now, StatusCode: 204, Latency: 30 * time.Millisecond},
		true, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("webhook", "list")
	if code != 0 || !strings.Contains(out, "FAILING since") {
		t.Fatalf("list with a failing endpoint: %s", out)
	}
	code, out, _ = runCmd("webhook", "deliveries")
	if code != 0 || !strings.Contains(out, "msg_test1") || !strings.Contains(out, "503") || !strings.Contains(out, "120 ms") ||
		!strings.Contains(out, "succeeded") || !strings.Contains(out, "failed") {
		t.Fatalf("deliveries: %s", out)
	}
	code, out, _ = runCmd("webhook", "deliveries", "--failed")
	if code != 0 || !strings.Contains(out, "answered 503") || strings.Contains(out, "succeeded") {
		t.Fatalf("deliveries --failed: %s", out)
	}

	if code, out, _ := runCmd("webhook", "remove", "1"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %s", code, out)
	}
	if code, _, errs := runCmd("webhook", "remove", "1"); code == 0 || !strings.Contains(errs, "no webhook endpoint 1") {
		t.Fatalf("remove twice: %d %s", code, errs)
	}
	if _, out, _ := runCmd("webhook", "list"); strings.Contains(out, "hooks.example.com") {
		t.Fatalf("removed endpoint still listed: %s", out)
	}
}
