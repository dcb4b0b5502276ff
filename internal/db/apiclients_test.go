package db_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

func TestAPIClientsLifecycle(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	h := sha256.Sum256([]byte("tlk_one"))
	c, err := s.CreateAPIClient(ctx, "one", "tlk_abcd", h[:], []string{"links:read"})
	if err != nil || c.ID == 0 {
		t.Fatal(err)
	}
	h2 := sha256.Sum256([]byte("tlk_two"))
	if _, err := s.CreateAPIClient(ctx, "one", "tlk_efgh", h2[:], nil); !errors.Is(err, db.ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	l := saveLink(t, s, "sub-api", "user_data")

	got, link, err := s.AuthenticateWithLink(ctx, h[:], l.ID)
	if err != nil || got.Name != "one" || link == nil || link.ID != l.ID || link.OwnerSub != "sub-api" ||
		!bytes.Equal(link.AccessTokenSealed, l.AccessTokenSealed) || link.Status != db.StatusActive {
		t.Fatalf("authenticate with link: %+v %+v %v", got, link, err)
	}
	if _, link, err = s.AuthenticateWithLink(ctx, h[:], "6f1c1a52-2f8e-4d5e-9a43-6c3b1a9f0000"); err != nil || link != nil {
		t.Errorf("unknown link: %+v %v", link, err)
	}
	if _, link, err = s.AuthenticateWithLink(ctx, h[:], "not-a-uuid"); err != nil || link != nil {
		t.Errorf("malformed link id: %+v %v", link, err)
	}
	if _, _, err = s.AuthenticateWithLink(ctx, h2[:], l.ID); !errors.Is(err, db.ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}

	r, err := s.RevokeAPIClient(ctx, "one")
	if err != nil || r.RevokedAt.IsZero() {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, h[:]); !errors.Is(err, db.ErrUnknownKey) {
		t.Errorf("revoked key: %v", err)
	}
	again, err := s.RevokeAPIClient(ctx, "one")
	if err != nil || !again.RevokedAt.Equal(r.RevokedAt) {
		t.Errorf("second revoke: %v %v", again, err)
	}
	if _, err := s.RevokeAPIClient(ctx, "nobody"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	list, err := s.ListAPIClients(ctx)
	if err != nil || len(list) != 1 || list[0].KeyPrefix != "tlk_abcd" || list[0].RevokedAt.IsZero() {
		t.Errorf("list: %+v %v", list, err)
	}
}

func TestListLinksKeysetAndLastUsed(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	var ids []string
	for _, sub := range []string{"a", "b", "c", "d", "e"} {
		ids = append(ids, saveLink(t, s, "list-"+sub, "user_data").ID)
	}
	if _, err := s.RevokeLink(ctx, ids[2], "test"); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("tlk_list"))
	c, _ := s.CreateAPIClient(ctx, "lister", "tlk_list", h[:], []string{"links:read"})
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.RecordUsage(ctx, []db.Usage{{LinkID: ids[0], APIClientID: c.ID, LastUsedAt: at}}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		rows, err := s.ListLinks(ctx, db.LinkFilter{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if seen[r.ID] || r.AccessTokenSealed != nil || r.RefreshTokenSealed != nil {
				t.Errorf("row %s repeated or carries ciphertext", r.ID)
			}
			seen[r.ID] = true
			if r.ID == ids[0] && !r.LastUsedAt.Equal(at) {
				t.Errorf("last used = %v", r.LastUsedAt)
			}
		}
		if len(rows) < 2 || pages > 5 {
			break
		}
		after = rows[len(rows)-1].ID
	}
	if len(seen) != 5 {
		t.Errorf("saw %d links", len(seen))
	}
	revoked, _ := s.ListLinks(ctx, db.LinkFilter{Status: db.StatusRevoked})
	if len(revoked) != 1 || revoked[0].ID != ids[2] {
		t.Errorf("revoked filter: %+v", revoked)
	}
	bySub, _ := s.ListLinks(ctx, db.LinkFilter{OwnerSub: "list-d"})
	if len(bySub) != 1 || bySub[0].ID != ids[3] {
		t.Errorf("sub filter: %+v", bySub)
	}
	if last, err := s.LinkLastUsed(ctx, ids[0]); err != nil || !last.Equal(at) {
		t.Errorf("LinkLastUsed = %v %v", last, err)
	}
	if last, err := s.LinkLastUsed(ctx, ids[1]); err != nil || !last.IsZero() {
		t.Errorf("LinkLastUsed (never) = %v %v", last, err)
	}
}
