package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"teslalink/internal/seal"
	"teslalink/internal/testenv"
)

// TestTokenKeyMissingIs503: another instance made a new key primary and
// re-sealed the tokens; an instance still running with only the old key
// answers a 503 problem with Retry-After, and tells the operator in one
// log line what to do, instead of a 500 on every token.
func TestTokenKeyMissingIs503(t *testing.T) {
	t.Parallel()
	oldSpec, _ := seal.GenerateKey("old")
	newSpec, _ := seal.GenerateKey("new")
	e1 := testenv.New(t, testenv.Options{TokenKeys: oldSpec, NoCache: true})
	e2 := testenv.New(t, testenv.Options{DatabaseURL: e1.DBURL, Sim0: e1.Sim, TokenKeys: newSpec + "," + oldSpec, NoCache: true})
	l := linkOwner(t, e1, "rotating@example.com")
	if res, err := e2.Links.RotateKeys(context.Background(), 10, nil); err != nil || res.Resealed != 1 {
		t.Fatalf("rotate: %+v %v", res, err)
	}
	a := newAPI(t, e1, newKey(t, e1, "svc"))
	for range 3 {
		_, res, body := a.token(l.ID, "")
		wantProblem(t, res, body, http.StatusServiceUnavailable, "token-key-unavailable")
		if res.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	}
	logs := e1.Logs.String()
	if n := strings.Count(logs, "OPERATOR ALERT: stored tokens are sealed with a key this instance does not have"); n != 1 {
		t.Errorf("operator alert lines = %d, want 1 (rate-limited)\n%s", n, logs)
	}
	if !strings.Contains(logs, `"key_id":"new"`) {
		t.Error("the alert does not name the missing key id")
	}
	// The instance with both keys serves the token.
	if _, res, body := newAPI(t, e2, newKey(t, e2, "svc2")).token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("instance with the new key: %d %s", res.StatusCode, body)
	}
}
