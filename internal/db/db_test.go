package db_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func sealedFor(id string) db.SealedTokens {
	return db.SealedTokens{KeyID: "k1", Refresh: []byte("r-" + id), Access: []byte("a-" + id)}
}

func saveLink(t *testing.T, s *db.Store, sub string, scopes ...string) *db.Link {
	t.Helper()
	l, err := s.SaveLink(context.Background(), db.LinkGrant{Sub: sub, Email: sub + "@example.com", Name: "N " + sub,
		Region: "na", RequestedScopes: scopes, GrantedScopes: scopes, AccessTokenExpiresAt: time.Now().Add(8 * time.Hour)},
		func(id string) (db.SealedTokens, error) { return sealedFor(id), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	// The template is migrated already: nothing left to apply, even when racing.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied, err := s.Migrate(context.Background())
			if err == nil && len(applied) != 0 {
				err = errors.New("applied again")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSaveLinkUpsertsOneOwnerPerSub(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	a := saveLink(t, s, "sub-a", "openid", "user_data")
	if a.Status != db.StatusActive || string(a.RefreshTokenSealed) != "r-"+a.ID || a.OwnerEmail != "sub-a@example.com" {
		t.Fatalf("unexpected link: %+v", a)
	}
	again := saveLink(t, s, "sub-a", "openid", "vehicle_device_data")
	if again.ID != a.ID || again.OwnerID != a.OwnerID {
		t.Fatalf("relink made a new link: %s vs %s", again.ID, a.ID)
	}
	if len(again.GrantedScopes) != 2 || again.GrantedScopes[1] != "vehicle_device_data" {
		t.Fatalf("scopes not updated: %v", again.GrantedScopes)
	}
	b := saveLink(t, s, "sub-b", "openid")
	if b.ID == a.ID || b.OwnerID == a.OwnerID {
		t.Fatal("two owners share a link")
	}
	evs, err := s.AuditForLink(ctx, a.ID)
	if err != nil || len(evs) != 2 || evs[0].Action != db.ActionLinked || evs[1].Action != db.ActionScopesChanged {
		t.Fatalf("audit = %+v, %v", evs, err)
	}
}

func TestRevokeDeletesCiphertextsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	a := saveLink(t, s, "sub-a", "openid")
	b := saveLink(t, s, "sub-b", "openid")
	for i := 0; i < 2; i++ {
		l, err := s.RevokeLink(ctx, a.ID, "owner")
		if err != nil {
			t.Fatal(err)
		}
		if l.Status != db.StatusRevoked || l.RefreshTokenSealed != nil || l.AccessTokenSealed != nil || l.RevokedAt.IsZero() {
			t.Fatalf("revoke %d: %+v", i, l)
		}
	}
	other, _ := s.GetLink(ctx, b.ID)
	if other.Status != db.StatusActive || other.RefreshTokenSealed == nil {
		t.Fatal("other owner's link touched")
	}
	evs, _ := s.AuditForLink(ctx, a.ID)
	if n := len(evs); n != 2 {
		t.Fatalf("want created+revoked audit events, got %d", n)
	}
	if _, err := s.RevokeLink(ctx, "00000000-0000-0000-0000-000000000000", "owner"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown link: %v", err)
	}
	relinked := saveLink(t, s, "sub-a", "openid")
	if relinked.ID != a.ID || relinked.Status != db.StatusActive || relinked.RefreshTokenSealed == nil {
		t.Fatalf("relink after revoke: %+v", relinked)
	}
}

func TestUpdateLinkLockedSerialises(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid")
	var mu sync.Mutex
	inside, maxInside, updates := 0, 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateLinkLocked(ctx, l.ID, func(cur *db.Link) (*db.TokenUpdate, error) {
				mu.Lock()
				inside++
				maxInside = max(maxInside, inside)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // widen the window a lock must close
				mu.Lock()
				inside--
				mu.Unlock()
				if string(cur.AccessTokenSealed) == "refreshed" {
					return nil, nil
				}
				mu.Lock()
				updates++
				mu.Unlock()
				return &db.TokenUpdate{Sealed: db.SealedTokens{KeyID: "k1", Refresh: []byte("r2"), Access: []byte("refreshed")},
					AccessTokenExpiresAt: time.Now().Add(time.Hour), GrantedScopes: []string{"openid", "user_data"}}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if maxInside != 1 || updates != 1 {
		t.Fatalf("maxInside=%d updates=%d, want 1 and 1", maxInside, updates)
	}
	got, _ := s.GetLink(ctx, l.ID)
	if string(got.AccessTokenSealed) != "refreshed" || len(got.GrantedScopes) != 2 || got.Region != "na" {
		t.Fatalf("after update: %+v", got)
	}
	if _, err := s.UpdateLinkLocked(ctx, "nope", nil); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestNeedsReauthKeepsLink(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid")
	// A link renewed since the refused refresh is not flagged.
	if err := s.MarkNeedsReauth(ctx, l.ID, "login_required", []byte("an older token")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetLink(ctx, l.ID); got.Status != db.StatusActive {
		t.Fatalf("renewed link flagged: %s", got.Status)
	}
	if err := s.MarkNeedsReauth(ctx, l.ID, "login_required", l.RefreshTokenSealed); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetLink(ctx, l.ID)
	if got.Status != db.StatusNeedsReauth || got.StatusReason != "login_required" || got.RefreshTokenSealed == nil {
		t.Fatalf("%+v", got)
	}
}

func TestSessionsAndLoginStates(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	l := saveLink(t, s, "sub-a", "openid")
	now := time.Now()
	h := []byte("hash-1")
	if err := s.CreateSession(ctx, db.Session{IDHash: h, OwnerID: l.OwnerID, Data: []byte("x"), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, h)
	if err != nil || got.OwnerID != l.OwnerID || string(got.Data) != "x" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := s.DeleteOwnerSessions(ctx, l.OwnerID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, h); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	first, err := s.ConsumeLoginState(ctx, []byte("st"), now.Add(time.Hour))
	second, err2 := s.ConsumeLoginState(ctx, []byte("st"), now.Add(time.Hour))
	if err != nil || err2 != nil || !first || second {
		t.Fatalf("consume: %v %v %v %v", first, second, err, err2)
	}
}
