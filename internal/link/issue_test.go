package link_test

import (
	"context"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/testenv"
)

func issueRequest(key string, linkID string) link.IssueRequest {
	in := link.IssueRequest{LinkID: linkID}
	copy(in.KeyHash[:], apikey.Hash(key))
	return in
}

// IssueToken serves a valid token from the cache without touching the
// database (a cancelled context would fail any query), and drops the entry
// itself when it refreshes or revokes the link on this instance.
func TestIssueTokenFromCache(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linked(t, e, "cache@example.com")
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CreateAPIClient(context.Background(), "svc", k.Display, k.Hash, apikey.Scopes); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !e.Cache.Live() {
		if time.Now().After(deadline) {
			t.Fatal("token cache never went live")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx := context.Background()
	first, err := e.Links.IssueToken(ctx, issueRequest(k.Secret, l.ID))
	if err != nil || first.ClientName != "svc" || first.LinkID != l.ID {
		t.Fatalf("first: %+v %v", first, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	hit, err := e.Links.IssueToken(cancelled, issueRequest(k.Secret, l.ID))
	if err != nil || hit.AccessToken != first.AccessToken {
		t.Fatalf("cache hit with a cancelled context: %v", err)
	}

	// A forced refresh on this instance drops the entry: the next call reads
	// the database again (and fails with the cancelled context).
	forced := issueRequest(k.Secret, l.ID)
	forced.Read = func() (link.TokenRequest, error) { return link.TokenRequest{ForceRefresh: true}, nil }
	fresh, err := e.Links.IssueToken(ctx, forced)
	if err != nil || fresh.AccessToken == first.AccessToken {
		t.Fatalf("forced refresh: %v", err)
	}
	if _, err := e.Links.IssueToken(cancelled, issueRequest(k.Secret, l.ID)); err == nil {
		t.Fatal("served from the cache after this instance refreshed the link")
	}
	again, err := e.Links.IssueToken(ctx, issueRequest(k.Secret, l.ID))
	if err != nil || again.AccessToken != fresh.AccessToken {
		t.Fatalf("after refresh: %v", err)
	}

	if _, err := e.Links.Revoke(ctx, l.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Links.IssueToken(ctx, issueRequest(k.Secret, l.ID)); !apperr.Is(err, apperr.LinkRevoked) {
		t.Fatalf("after revoke: %v, want %s", err, apperr.LinkRevoked)
	}
}

// A client's use of a link is recorded once per window, whether the token
// comes from the cache or from the database; another client's first use
// is recorded too.
func TestIssueTokenRecordsUseOncePerWindow(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linked(t, e, "usage@example.com")
	ctx := context.Background()
	keys := make([]apikey.Key, 2)
	for i, name := range []string{"svc", "other"} {
		k, err := apikey.New()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Store.CreateAPIClient(ctx, name, k.Display, k.Hash, apikey.Scopes); err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	for deadline := time.Now().Add(10 * time.Second); !e.Cache.Live(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("token cache never went live")
		}
	}
	issue := func(step string, k apikey.Key, want bool) {
		t.Helper()
		got, err := e.Links.IssueToken(ctx, issueRequest(k.Secret, l.ID))
		if err != nil || got.RecordUse != want {
			t.Fatalf("%s: RecordUse = %v (want %v), %v", step, got.RecordUse, want, err)
		}
		if got.RecordUse {
			e.Usage.Record(got.LinkID, got.ClientID, e.Sim.Clock().Now()) // the service's clock
		}
	}
	issue("first use", keys[0], true)
	issue("from the cache", keys[0], false)
	if err := e.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Writing the use stamps the link's row without a change notification:
	// a change to another link, committed after it, arrives while the
	// first link stays cached.
	other := linked(t, e, "other@example.com")
	if _, err := e.Links.IssueToken(ctx, issueRequest(keys[0].Secret, other.ID)); err != nil {
		t.Fatal(err)
	}
	row, err := e.Store.GetLink(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.MarkNeedsReauth(ctx, other.ID, "test", row.RefreshTokenSealed); err != nil {
		t.Fatal(err)
	}
	otherID, _ := db.ParseLinkID(other.ID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := e.Cache.Link(otherID); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other link's change notification never arrived")
		}
	}
	if id, _ := db.ParseLinkID(l.ID); !cachedLink(e, id) {
		t.Fatal("writing a use evicted the link from the cache")
	}
	e.Cache.InvalidateLink(l.ID)
	issue("from the database, recorded moments ago", keys[0], false)
	issue("another client's first use", keys[1], true)
	issue("that client again", keys[1], false)
}

func cachedLink(e *testenv.Env, id [16]byte) bool {
	_, ok := e.Cache.Link(id)
	return ok
}
