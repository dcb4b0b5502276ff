package teslasim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every refresh token presented again after it was accepted once is
// counted: within the grace (accepted) and after it (refused). Fresh
// tokens, never-used tokens that were cycled out, and refusals caused by an
// injected fault are not reuse.
func TestRefreshReuseCounted(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "reuse@example.com")
	rtA := a.str("refresh_token")
	if got := s.RefreshReuses(); got != (RefreshReuse{}) {
		t.Fatalf("after login: %+v", got)
	}
	b := refresh(t, s, rtA)
	if b.status != 200 {
		t.Fatalf("first use of A: %d", b.status)
	}
	if got := s.RefreshReuses(); got != (RefreshReuse{}) {
		t.Fatalf("after a first use: %+v", got)
	}
	c := refresh(t, s, rtA) // within the grace: Tesla accepts it, but it is a second use
	if c.status != 200 {
		t.Fatalf("A again: %d", c.status)
	}
	if got := s.RefreshReuses(); got != (RefreshReuse{Accepted: 1}) {
		t.Fatalf("after A twice: %+v", got)
	}
	// B was cycled out unused: refused, but not a reuse.
	if r := refresh(t, s, b.str("refresh_token")); r.status != 401 {
		t.Fatalf("cycled-out B: %d", r.status)
	}
	// A fault refuses C before it is looked at: not a use.
	s.Inject(FaultRefreshLoginRequired, FaultOptions{Count: 1})
	if r := refresh(t, s, c.str("refresh_token")); r.status != 401 {
		t.Fatalf("C under the fault: %d", r.status)
	}
	if got := s.RefreshReuses(); got != (RefreshReuse{Accepted: 1}) {
		t.Fatalf("after a cycled-out token and a fault: %+v", got)
	}
	if r := refresh(t, s, c.str("refresh_token")); r.status != 200 { // A loses its grace
		t.Fatalf("C: %d", r.status)
	}
	if r := refresh(t, s, rtA); r.status != 401 {
		t.Fatalf("A after C was used: %d", r.status)
	}
	if got := s.RefreshReuses(); got != (RefreshReuse{Accepted: 1, Refused: 1}) {
		t.Fatalf("after A a third time: %+v", got)
	}

	adm := httptest.NewServer(s.AdminHandler())
	t.Cleanup(adm.Close)
	res, err := http.Get(adm.URL + "/refresh-reuse")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got RefreshReuse
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 || got != (RefreshReuse{Accepted: 1, Refused: 1}) {
		t.Fatalf("GET /refresh-reuse: %d %+v %v", res.StatusCode, got, err)
	}
}

// A refresh token issued without a browser refreshes like a login's: the ID
// token names the owner's sub, the granted scopes come back, and it rotates.
func TestIssueRefreshToken(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	sub, rt, err := s.IssueRefreshToken("seeded+eu@example.com", []string{"user_data"})
	if err != nil {
		t.Fatal(err)
	}
	if sub != s.OwnerSub("seeded+eu@example.com") || !strings.HasPrefix(rt, "EU_") {
		t.Fatalf("sub %q, token prefix %q", sub, rt[:3])
	}
	r := refresh(t, s, rt)
	if r.status != 200 || r.str("refresh_token") == rt || r.str("scope") != "openid offline_access user_data" {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	if _, idt := claims(t, r.str("id_token")); idt["sub"] != sub {
		t.Fatalf("id token sub %v, want %s", idt["sub"], sub)
	}
	if st, _ := fleetGet(t, s, "eu", "/api/1/users/me", r.str("access_token")); st != 200 {
		t.Fatalf("users/me with the refreshed access token: %d", st)
	}
	unstarted, err := New(Config{SigningKey: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := unstarted.IssueRefreshToken("x@example.com", nil); err == nil {
		t.Fatal("an unstarted sim issued a refresh token")
	}
}

// ConsentOverHTTP signs in through the sim's real listener and returns the
// callback with a code that exchanges; a wrong password is an error.
func TestConsentOverHTTP(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p := defaultParams()
	before := s.Calls("authorize")
	loc, err := ConsentOverHTTP(context.Background(), client, s.testAuthURL(p), "wire@example.com", DefaultPassword,
		[]string{"user_data"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("authorize") - before; n != 2 {
		t.Errorf("authorize calls: %d, want 2 (page and form)", n)
	}
	code := loc.Query().Get("code")
	if r := exchange(t, s, code, p); r.status != 200 || r.str("scope") != "openid offline_access user_data" {
		t.Fatalf("exchange: %d %v", r.status, r.body)
	}
	if _, err := ConsentOverHTTP(context.Background(), client, s.testAuthURL(p), "wire@example.com", "wrong",
		[]string{"user_data"}, true); err == nil {
		t.Fatal("a wrong password gave a redirect")
	}
}
