package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// TestPublicClientEndToEnd runs the service as a public client (no
// TESLA_CLIENT_SECRET) against a simulator that registered the client as
// Tesla's "open source app": it refuses any client_secret and requires PKCE.
// Linking, a refresh, and both revocations (owner page and API) work.
func TestPublicClientEndToEnd(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Sim: func(c *teslasim.Config) { c.PublicClient = true }})
	if !e.Tesla.PublicClient() {
		t.Fatal("the service was not configured as a public client")
	}

	// Link.
	l := linkOwner(t, e, "open@example.com")
	if e.Sim.Calls("token.authorization_code") != 1 {
		t.Fatalf("code exchanges = %d", e.Sim.Calls("token.authorization_code"))
	}
	a := newAPI(t, e, newKey(t, e, "app"))
	first, res, body := a.token(l.ID, "")
	if res.StatusCode != http.StatusOK || first.AccessToken == "" {
		t.Fatalf("token: %d %s", res.StatusCode, body)
	}

	// Refresh: the access token is about to expire.
	e.Sim.Clock().Advance(8*time.Hour - time.Minute)
	second, res, body := a.token(l.ID, "")
	if res.StatusCode != http.StatusOK || second.AccessToken == first.AccessToken {
		t.Fatalf("token after expiry: %d %s", res.StatusCode, body)
	}
	if n := e.Sim.Calls("token.refresh_token"); n != 1 {
		t.Fatalf("refreshes at Tesla = %d, want 1", n)
	}

	// Revoke through the API.
	if res, body := a.do(http.MethodDelete, "/api/v1/links/"+l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", res.StatusCode, body)
	}
	_, res, body = a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusGone, "link-revoked")

	// A second owner links and revokes on the account page.
	b := e.Browser()
	if res, _ := b.Login("open2@example.com", []string{"user_data"}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d", res.StatusCode)
	}
	_, page := b.Get("/account/revoke")
	if res, _ := b.PostForm("/account/revoke", url.Values{"csrf": {csrfOf(t, page)}}); res.StatusCode != http.StatusOK {
		t.Fatalf("owner revoke: %d", res.StatusCode)
	}
	rows, err := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub("open2@example.com")})
	if err != nil || len(rows) != 1 || rows[0].Status != db.StatusRevoked || rows[0].RefreshTokenSealed != nil {
		t.Fatalf("owner revoke left %+v %v", rows, err)
	}
	if leaks := e.Leaks(b); len(leaks) > 0 {
		t.Fatalf("leaked: %v", leaks)
	}
}
