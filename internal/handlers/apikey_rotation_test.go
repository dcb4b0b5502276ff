package handlers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/testenv"
)

// TestAPIKeyRotationOverlap: after `web apiclient rotate`, the previous key
// keeps working on the token route until its overlap ends, and not a moment
// longer, although nothing announces that end to the token cache; each key's
// last use is recorded.
func TestAPIKeyRotationOverlap(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	oldKey := newKey(t, e, "rotating")
	ada := linkOwner(t, e, "ada@example.com")
	a := newAPI(t, e, oldKey)
	if _, res, body := a.token(ada.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", res.StatusCode, body)
	}
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.RotateAPIKey(ctx, "rotating", k.Display, k.Hash, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, key := range []string{oldKey, k.Secret, oldKey, k.Secret} {
		if _, res, body := a.withKey(key).token(ada.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("during the overlap: %d %s", res.StatusCode, body)
		}
	}
	if time.Now().After(deadline) {
		t.Skip("machine too slow to finish within the overlap")
	}
	if err := e.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := e.Store.ListAPIClients(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsedAt.IsZero() || list[0].OldKeyLastUsedAt.IsZero() {
		t.Fatalf("last use per key: %+v %v", list, err)
	}
	time.Sleep(time.Until(deadline) + 200*time.Millisecond)
	_, res, body := a.withKey(oldKey).token(ada.ID, "")
	wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")
	if _, res, body := a.withKey(k.Secret).token(ada.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("new key after the overlap: %d %s", res.StatusCode, body)
	}
}
