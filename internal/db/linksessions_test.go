package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

// TestLinkSessionLifecycle: a session starts once, completes once, and is
// deleted a day after both its URL and its claim code expired.
func TestLinkSessionLifecycle(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	c, err := s.CreateAPIClient(ctx, "app", "tlk_abcd", []byte("0123456789abcdef0123456789abcdef"), []string{"links:create"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	create := func(hash string, created time.Time) *db.LinkSession {
		t.Helper()
		ls, err := s.CreateLinkSession(ctx, db.NewLinkSession{IDHash: []byte(hash), APIClientID: c.ID, ExternalRef: "u",
			ReturnURL: "https://app.example.com/done", Scopes: []string{"user_data"}, CreatedAt: created,
			ExpiresAt: created.Add(30 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	old := create("old", now.Add(-48*time.Hour))
	fresh := create("fresh", now)
	if _, err := s.StartLinkSession(ctx, []byte("old"), now); !errors.Is(err, db.ErrSessionNotPending) {
		t.Errorf("start of an expired session: %v", err)
	}
	if _, err := s.StartLinkSession(ctx, []byte("fresh"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartLinkSession(ctx, []byte("fresh"), now); !errors.Is(err, db.ErrSessionNotPending) {
		t.Errorf("second start: %v", err)
	}
	if _, err := s.CompleteLinkSession(ctx, fresh.ID, db.SessionOutcome{Status: db.SessionDenied, At: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteLinkSession(ctx, fresh.ID, db.SessionOutcome{Status: db.SessionDenied, At: now}); !errors.Is(err, db.ErrSessionNotPending) {
		t.Errorf("second completion: %v", err)
	}
	if _, err := s.DeleteExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLinkSessionByID(ctx, old.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("a session expired two days ago is kept: %v", err)
	}
	if _, err := s.GetLinkSessionByID(ctx, fresh.ID); err != nil {
		t.Errorf("a current session was deleted: %v", err)
	}
}
