package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/testenv"
)

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf token on page")
	}
	return m[1]
}

func TestLinkFlowEndToEnd(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()

	res, body := b.Get("/")
	if res.StatusCode != 200 || !strings.Contains(body, "Connect") {
		t.Fatalf("landing: %d", res.StatusCode)
	}
	res, body = b.Get("/connect")
	if res.StatusCode != 200 || !strings.Contains(body, `action="/connect"`) {
		t.Fatalf("connect: %d", res.StatusCode)
	}

	authURL := b.StartLogin([]string{"user_data", "vehicle_device_data", "vehicle_cmds"})
	u, _ := url.Parse(authURL)
	q := u.Query()
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(p)) < 43 {
			t.Errorf("%s too short: %d", p, len(q.Get(p)))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("prompt_missing_scopes") != "true" {
		t.Errorf("authorize params: %v", q)
	}
	if got := q.Get("scope"); got != "openid offline_access user_data vehicle_device_data vehicle_cmds" {
		t.Errorf("scope = %q", got)
	}
	// The owner unticks vehicle commands at Tesla.
	cb := b.Consent(authURL, "ada@example.com", []string{"user_data", "vehicle_device_data"}, true)
	res, _ = b.Get(cb)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("callback: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = b.Get("/account")
	if res.StatusCode != 200 {
		t.Fatalf("account: %d", res.StatusCode)
	}
	for _, want := range []string{`data-scope="user_data"`, `data-scope="vehicle_device_data"`, `data-testid="missing-scopes"`, "ada@example.com", "data-vin="} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %s", want)
		}
	}
	l, err := e.Store.GetLinkByOwner(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if l.Status != db.StatusActive || len(l.GrantedScopes) != 4 {
		t.Fatalf("link: %+v", l.GrantedScopes)
	}

	// Revoke.
	_, body = b.Get("/account/revoke")
	res, body = b.PostForm("/account/revoke", url.Values{"csrf": {csrfOf(t, body)}})
	if res.StatusCode != 200 || !strings.Contains(body, "revoke_client_id=") {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	l, _ = e.Store.GetLink(context.Background(), l.ID)
	if l.Status != db.StatusRevoked || l.RefreshTokenSealed != nil {
		t.Fatalf("after revoke: %+v", l)
	}
	res, _ = b.Get("/account")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("account after revoke: %d", res.StatusCode)
	}
	if leaks := e.Leaks(b); len(leaks) > 0 {
		t.Fatalf("leaked: %v", leaks)
	}
}

func TestOversizedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	res, body := b.PostForm("/connect", url.Values{"scope": {"user_data"}, "pad": {strings.Repeat("x", 100<<10)}})
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
		t.Fatalf("oversized form: %d", res.StatusCode)
	}
}

// TestAccountPageReusesTheVehicleList: reloading the account page does not
// call Tesla's Fleet API again while the access token is the same; a new
// token (refresh) fetches a fresh list.
func TestAccountPageReusesTheVehicleList(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	if res, _ := b.Login("vera@example.com", []string{"vehicle_device_data"}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	for i := 0; i < 3; i++ {
		if res, body := b.Get("/account"); res.StatusCode != 200 || !strings.Contains(body, "data-vin=") {
			t.Fatalf("account page %d: %d", i, res.StatusCode)
		}
	}
	if n := e.Sim.Calls("vehicles"); n != 1 {
		t.Fatalf("3 page views made %d vehicle calls, want 1", n)
	}
	l, err := e.Store.GetLinkByOwner(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Links.AccessToken(context.Background(), l.ID, link.TokenRequest{ForceRefresh: true}); err != nil {
		t.Fatal(err)
	}
	b.Get("/account")
	if n := e.Sim.Calls("vehicles"); n != 2 {
		t.Fatalf("after a refresh: %d vehicle calls, want 2", n)
	}
}
