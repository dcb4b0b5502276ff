package handlers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"teslalink/internal/pgtest"
	"teslalink/internal/testenv"
)

// TestTokenCacheNeedsNotificationsToArrive: a listener whose connection is
// up but never receives a notification (as behind a pooler in transaction
// mode; here LISTEN_DATABASE_URL names another database, where the
// notifications sent through the pool never go) must keep the token cache
// off, so a link revoked elsewhere is refused at once, not served from
// memory until the entry expires.
func TestTokenCacheNeedsNotificationsToArrive(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{ListenDatabaseURL: pgtest.URL(t)})
	l := linkOwner(t, e, "deaf@example.com")
	a := newAPI(t, e, newKey(t, e, "crm"))
	for range 2 { // the second one would be a cache hit if the cache were on
		if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %s", res.StatusCode, body)
		}
	}
	time.Sleep(3 * time.Second) // more than one heartbeat: it never comes back
	if e.Cache.Live() {
		t.Fatal("the token cache went live although no notification ever arrived")
	}
	// Revoked by another instance: this one hears nothing, and must still refuse.
	if _, err := e.Store.RevokeLink(context.Background(), l.ID, "owner"); err != nil {
		t.Fatal(err)
	}
	if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusGone {
		t.Fatalf("token after revoke elsewhere: %d %s; want 410", res.StatusCode, body)
	}
}

// TestTokenCacheListensOnADirectConnection: with LISTEN_DATABASE_URL set to
// a direct connection to the same database, the cache goes live and follows
// changes made elsewhere.
func TestTokenCacheListensOnADirectConnection(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := testenv.New(t, testenv.Options{DatabaseURL: dbURL, ListenDatabaseURL: dbURL})
	waitCacheLive(t, e)
	l := linkOwner(t, e, "direct@example.com")
	a := newAPI(t, e, newKey(t, e, "crm"))
	for range 2 {
		if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %s", res.StatusCode, body)
		}
	}
	if _, err := e.Store.RevokeLink(context.Background(), l.ID, "owner"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, res, _ := a.token(l.ID, "")
		if res.StatusCode == http.StatusGone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoke elsewhere never reached the cache: still %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !e.Cache.Live() {
		t.Fatal("the cache went off")
	}
}
