package link_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// linked logs an owner in through the service and returns the link.
func linked(t *testing.T, e *testenv.Env, email string) *db.Link {
	t.Helper()
	b := e.Browser()
	if res, _ := b.Login(email, []string{"user_data", "vehicle_device_data"}, nil); res.StatusCode != 303 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	l, err := e.Store.GetLinkByOwner(context.Background(), ownerID(t, e, email))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ownerID(t *testing.T, e *testenv.Env, email string) int64 {
	t.Helper()
	for id := int64(1); id < 20; id++ {
		l, err := e.Store.GetLinkByOwner(context.Background(), id)
		if err == nil && l.OwnerEmail == email {
			return id
		}
	}
	t.Fatalf("no owner %s", email)
	return 0
}

func TestKeyRotationReSealsEverything(t *testing.T) {
	t.Parallel()
	oldSpec, _ := seal.GenerateKey("old")
	e := testenv.New(t, testenv.Options{TokenKeys: oldSpec})
	ctx := context.Background()
	a := linked(t, e, "a@example.com")
	b := linked(t, e, "b@example.com")
	before, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}

	newSpec, _ := seal.GenerateKey("new")
	both, _ := seal.ParseKeys(newSpec + "," + oldSpec)
	svc := link.New(link.Config{Store: e.Store, Tesla: e.Tesla, Fleet: e.Fleet, Keys: both, Now: e.Sim.Clock().Now})
	res, err := svc.RotateKeys(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 2 || res.Failed != 0 {
		t.Fatalf("rotate: %+v", res)
	}
	for _, id := range []string{a.ID, b.ID} {
		l, _ := e.Store.GetLink(ctx, id)
		if l.TokenKeyID != "new" {
			t.Fatalf("link %s still on %q", id, l.TokenKeyID)
		}
	}
	// The old key can now be removed: the new key alone opens everything.
	onlyNew, _ := seal.ParseKeys(newSpec)
	svc = link.New(link.Config{Store: e.Store, Tesla: e.Tesla, Fleet: e.Fleet, Keys: onlyNew, Now: e.Sim.Clock().Now})
	after, err := svc.AccessToken(ctx, a.ID, link.TokenRequest{})
	if err != nil || after.AccessToken != before.AccessToken {
		t.Fatalf("after rotation: %v", err)
	}
	// Running it again finds nothing to do.
	if res, err := svc.RotateKeys(ctx, 10, nil); err != nil || res.Resealed != 0 || res.Current != 2 {
		t.Fatalf("second rotate: %+v %v", res, err)
	}
}

func TestWrongKeyNeverProducesATokenSilently(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := linked(t, e, "a@example.com")
	other, _ := seal.GenerateKey("other")
	kr, _ := seal.ParseKeys(other)
	svc := link.New(link.Config{Store: e.Store, Tesla: e.Tesla, Fleet: e.Fleet, Keys: kr, Now: e.Sim.Clock().Now})
	if _, err := svc.AccessToken(context.Background(), a.ID, link.TokenRequest{}); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}
}

func TestAccessTokenRefreshesOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	a := linked(t, e, "a@example.com")
	t1, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Sim.Calls("token.refresh_token") != 0 {
		t.Fatal("refreshed a fresh token")
	}
	e.Sim.Clock().Advance(8*time.Hour - 4*time.Minute) // inside the 5-minute margin
	t2, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Sim.Calls("token.refresh_token") != 1 || t2.AccessToken == t1.AccessToken || !t2.ExpiresAt.After(t1.ExpiresAt) {
		t.Fatalf("refresh calls = %d", e.Sim.Calls("token.refresh_token"))
	}
	if _, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{Scopes: []string{"vehicle_cmds"}}); !errors.Is(err, link.ErrMissingScope) {
		t.Fatalf("missing scope: %v", err)
	}
	// Scopes narrowed at Tesla show up after the next refresh.
	e.Sim.SetGrantedScopes(e.Sim.OwnerSub("a@example.com"), []string{"openid", "offline_access", "user_data"})
	t3, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{ForceRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(t3.Scopes) != 3 {
		t.Fatalf("scopes after narrowing: %v", t3.Scopes)
	}
}

func TestReauthKeepsTheLink(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	a := linked(t, e, "a@example.com")
	e.Sim.Inject(teslasim.FaultRefreshLoginRequired, teslasim.FaultOptions{Count: 1})
	if _, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{ForceRefresh: true}); !errors.Is(err, link.ErrReauthRequired) {
		t.Fatalf("want ErrReauthRequired, got %v", err)
	}
	l, _ := e.Store.GetLink(ctx, a.ID)
	if l.Status != db.StatusNeedsReauth || l.RefreshTokenSealed == nil {
		t.Fatalf("link after login_required: %+v", l.Status)
	}
	if _, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{}); !errors.Is(err, link.ErrReauthRequired) {
		t.Fatalf("second call: %v", err)
	}
}

func TestKeepAliveRefreshesIdleLinks(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	a := linked(t, e, "a@example.com")
	opts := link.KeepAliveOptions{MaxAge: 30 * 24 * time.Hour, Rate: 1000}
	if n, err := e.Links.KeepAlive(ctx, opts); err != nil || n != 0 {
		t.Fatalf("fresh link refreshed: %d %v", n, err)
	}
	e.Sim.Clock().Advance(31 * 24 * time.Hour)
	if n, err := e.Links.KeepAlive(ctx, opts); err != nil || n != 1 {
		t.Fatalf("keep-alive: %d %v", n, err)
	}
	if e.Sim.Calls("token.refresh_token") != 1 {
		t.Fatalf("refresh calls = %d", e.Sim.Calls("token.refresh_token"))
	}
	// 3 months after linking the original refresh token would have died; the link lives on.
	e.Sim.Clock().Advance(70 * 24 * time.Hour)
	if _, err := e.Links.AccessToken(ctx, a.ID, link.TokenRequest{}); err != nil {
		t.Fatalf("after 101 days: %v", err)
	}
}
