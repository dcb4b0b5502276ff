package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
)

// TestAPIKeyRotationAndNameReuse: a rotated client answers to both keys
// during the overlap (the old one flagged), only to the new one after; a
// second rotation ends the first old key at once; the last use of each key
// is listed; a revoked client's name can be used again.
func TestAPIKeyRotationAndNameReuse(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := context.Background()
	k1, k2, k3, k4 := sha256.Sum256([]byte("k1")), sha256.Sum256([]byte("k2")), sha256.Sum256([]byte("k3")), sha256.Sum256([]byte("k4"))
	if _, err := s.CreateAPIClient(ctx, "crm", "tlk_k1", k1[:], []string{"links:read"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.RotateAPIKey(ctx, "crm", "tlk_k2", k2[:], time.Hour)
	if err != nil || c.OldKeyPrefix != "tlk_k1" || time.Until(c.OldKeyExpiresAt) < 59*time.Minute {
		t.Fatalf("rotate: %+v %v", c, err)
	}
	if got, err := s.Authenticate(ctx, k1[:]); err != nil || !got.UsedOldKey || got.Name != "crm" {
		t.Fatalf("old key in overlap: %+v %v", got, err)
	}
	if got, err := s.Authenticate(ctx, k2[:]); err != nil || got.UsedOldKey {
		t.Fatalf("new key: %+v %v", got, err)
	}
	used := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := s.RecordKeyUse(ctx, [][]byte{k1[:], k2[:], k1[:]}, []time.Time{used, used.Add(time.Second), used.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAPIClients(ctx)
	if err != nil || len(list) != 1 || !list[0].OldKeyLastUsedAt.Equal(used) || !list[0].LastUsedAt.Equal(used.Add(time.Second)) ||
		list[0].OldKeyPrefix != "tlk_k1" {
		t.Fatalf("list: %+v %v", list, err)
	}
	// A second rotation with no overlap: k2 and k1 both stop at once.
	if _, err := s.RotateAPIKey(ctx, "crm", "tlk_k3", k3[:], 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][32]byte{k1, k2} {
		if _, err := s.Authenticate(ctx, k[:]); !errors.Is(err, db.ErrUnknownKey) {
			t.Errorf("a superseded key still authenticates: %v", err)
		}
	}
	if list, _ := s.ListAPIClients(ctx); list[0].OldKeyPrefix != "" {
		t.Errorf("an ended overlap is still listed: %+v", list[0])
	}
	// Revoke, then reuse the name.
	if _, err := s.RevokeAPIClient(ctx, "crm"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateAPIKey(ctx, "crm", "tlk_k4", k4[:], time.Hour); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("rotate a revoked client: %v", err)
	}
	if _, err := s.CreateAPIClient(ctx, "crm", "tlk_k4", k4[:], nil); err != nil {
		t.Fatalf("reuse a revoked name: %v", err)
	}
	if _, err := s.CreateAPIClient(ctx, "crm", "tlk_k5", k1[:], nil); !errors.Is(err, db.ErrConflict) {
		t.Errorf("two active clients with one name: %v", err)
	}
	if r, err := s.RevokeAPIClient(ctx, "crm"); err != nil || r.KeyPrefix != "tlk_k4" {
		t.Fatalf("revoke targets the active client: %+v %v", r, err)
	}
	if r, err := s.RevokeAPIClient(ctx, "crm"); err != nil || r.KeyPrefix != "tlk_k4" {
		t.Fatalf("revoke again: %+v %v", r, err)
	}
	if list, _ := s.ListAPIClients(ctx); len(list) != 2 {
		t.Errorf("list keeps both revoked clients: %+v", list)
	}
}
