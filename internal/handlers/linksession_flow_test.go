package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/testenv"
)

const teamReturn = "http://127.0.0.1:9/tesla/done?tab=cars"

// ownerRoundTrip opens the session URL, continues with ticked, consents at
// Tesla as email (granting all asked when grant is nil, denying when !allow)
// and returns the parsed return URL the callback redirects to.
func ownerRoundTrip(t *testing.T, e *testenv.Env, b *testenv.Browser, s sessionOut, email string, ticked, grant []string, allow bool) *url.URL {
	t.Helper()
	res, body := b.Get(s.URL)
	if res.StatusCode != 200 || !strings.Contains(body, `data-testid="link-session-form"`) {
		t.Fatalf("session page: %d\n%s", res.StatusCode, body)
	}
	res, _ = b.PostForm(strings.TrimPrefix(s.URL, e.URL), url.Values{"scope": ticked, "decision": {"allow"}})
	authorize := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(authorize, e.Sim.AuthorizeURL()) {
		t.Fatalf("session start: %d to %q, want 303 to Tesla", res.StatusCode, authorize)
	}
	res, _ = b.Get(b.Consent(authorize, email, grant, allow))
	back, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(back.String(), "http://127.0.0.1:9/tesla/done?") {
		t.Fatalf("callback: %d to %q, want 303 to the return URL", res.StatusCode, res.Header.Get("Location"))
	}
	return back
}

// TestLinkSessionOwnerFlow: the session URL leads through our page and
// Tesla back to the return URL with session_id, status, state and a code,
// and the claim binds the link. Until then the link is an ordinary owner link.
func TestLinkSessionOwnerFlow(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "acme"))
	if err := e.Store.SetAPIClientDisplayName(context.Background(), "acme", "Acme Charging"); err != nil {
		t.Fatal(err)
	}
	s := a.createSession("user-42", teamReturn, "vehicle_device_data", "vehicle_cmds")
	b := e.Browser()
	res, body := b.Get(s.URL)
	for _, want := range []string{"Acme Charging", "Test Service", `value="vehicle_device_data"`, `value="vehicle_cmds"`} {
		if !strings.Contains(body, want) {
			t.Errorf("session page lacks %q", want)
		}
	}
	if strings.Contains(body, `value="user_data"`) || strings.Contains(body, "tag-new\" data-testid") {
		t.Errorf("session page offers a scope not asked for, or marks one new without a connection")
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "http://127.0.0.1:9") {
		t.Errorf("session page CSP %q does not let its form go back to the app", csp)
	}

	// The owner unticks vehicle_cmds.
	back := ownerRoundTrip(t, e, b, s, "owner42@example.com", []string{"vehicle_device_data"}, nil, true)
	q := back.Query()
	if q.Get("session_id") != s.ID || q.Get("status") != "linked" || q.Get("state") != "st-user-42" || q.Get("code") == "" ||
		q.Get("tab") != "cars" {
		t.Fatalf("return URL %s lacks session_id, status=linked, state, code or the app's own query", back)
	}
	rows, err := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub("owner42@example.com")})
	if err != nil || len(rows) != 1 {
		t.Fatalf("link: %v %d", err, len(rows))
	}
	l := rows[0].Link
	if l.ExternalRef != "" || slices.Contains(l.GrantedScopes, "vehicle_cmds") || !slices.Contains(l.GrantedScopes, "vehicle_device_data") {
		t.Fatalf("before the claim: external_ref %q, granted %v", l.ExternalRef, l.GrantedScopes)
	}
	// Until claimed it is the owner's ordinary link: the account page shows it.
	if res, body := b.Get("/account"); res.StatusCode != 200 || !strings.Contains(body, "owner42@example.com") {
		t.Fatalf("account page after a session: %d", res.StatusCode)
	}
	// The same URL does not work twice, and never leads to Tesla again.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var res *http.Response
		var body string
		if method == http.MethodGet {
			res, body = b.Get(s.URL)
		} else {
			res, body = b.PostForm("/link/"+s.ID, url.Values{"decision": {"allow"}})
		}
		if res.StatusCode != http.StatusGone || res.Header.Get("Location") != "" || !strings.Contains(body, "already used") {
			t.Errorf("%s of a used session URL: %d, Location %q", method, res.StatusCode, res.Header.Get("Location"))
		}
	}

	res, out := a.claim(s.ID, q.Get("code"), "user-42")
	if res.StatusCode != 200 || !strings.Contains(string(out), `"external_ref":"user-42"`) || !strings.Contains(string(out), `"api_client":"acme"`) {
		t.Fatalf("claim: %d %s", res.StatusCode, out)
	}
	if leaks := e.Leaks(b); len(leaks) > 0 {
		t.Errorf("simulator secrets leaked: %v", leaks)
	}
	if strings.Contains(e.Logs.String(), s.ID) {
		t.Error("the session id (a bearer secret until used) is in the log")
	}
}

// TestLinkSessionDeniedAndDeclined: denying at Tesla or declining on our
// page sends the owner back with status=denied and no code.
func TestLinkSessionDeniedAndDeclined(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "acme"))

	s := a.createSession("user-1", teamReturn)
	back := ownerRoundTrip(t, e, e.Browser(), s, "deny@example.com", []string{"user_data"}, nil, false)
	if q := back.Query(); q.Get("status") != "denied" || q.Get("code") != "" || q.Get("session_id") != s.ID {
		t.Errorf("denied at Tesla: return URL %s", back)
	}
	res, body := a.claim(s.ID, "x", "user-1")
	wantProblem(t, res, body, 409, "link-session-not-linked")

	s2 := a.createSession("user-1", teamReturn)
	b := e.Browser()
	b.Get(s2.URL)
	res2, _ := b.PostForm("/link/"+s2.ID, url.Values{"decision": {"deny"}})
	loc, _ := url.Parse(res2.Header.Get("Location"))
	if res2.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("status") != "denied" || loc.Query().Get("state") != "st-user-1" {
		t.Errorf("declined on our page: %d to %q", res2.StatusCode, res2.Header.Get("Location"))
	}
}

// TestLinkSessionURLRefused: unknown, expired and used session URLs show a
// friendly page and never redirect (to Tesla or anywhere).
func TestLinkSessionURLRefused(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "acme"))
	b := e.Browser()

	check := func(name, path string, status int, words string) {
		t.Helper()
		for _, post := range []bool{false, true} {
			var res *http.Response
			var body string
			if post {
				res, body = b.PostForm(path, url.Values{"scope": {"user_data"}, "decision": {"allow"}})
			} else {
				res, body = b.Get(path)
			}
			if res.StatusCode != status || res.Header.Get("Location") != "" || !strings.Contains(body, words) ||
				!strings.Contains(body, `data-testid="error-reference"`) || strings.Contains(body, e.Sim.AuthorizeURL()) {
				t.Errorf("%s (post %v): %d, Location %q, want %d with %q", name, post, res.StatusCode, res.Header.Get("Location"), status, words)
			}
		}
	}
	check("unknown", "/link/ls_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 404, "not valid")
	check("malformed", "/link/%2e%2e", 404, "not valid")

	expired := a.createSession("user-1", teamReturn)
	e.Sim.Clock().Advance(30*time.Minute + time.Second)
	check("expired", "/link/"+expired.ID, 410, "expired")

	used := a.createSession("user-1", teamReturn)
	res, _ := b.PostForm("/link/"+used.ID, url.Values{"scope": {"user_data"}, "decision": {"allow"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), e.Sim.AuthorizeURL()) {
		t.Fatalf("first start: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	check("used (started)", "/link/"+used.ID, 410, "already used")

	// A scope the session did not ask for cannot be slipped in.
	s := a.createSession("user-1", teamReturn, "user_data")
	res, _ = b.PostForm("/link/"+s.ID, url.Values{"scope": {"vehicle_cmds"}, "decision": {"allow"}})
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Errorf("a scope not asked for: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestLinkSessionScopeUpgrade: an owner already linked who is asked for
// more sees which scopes are new; the same link (same id, history kept)
// gains them and keeps what it had.
func TestLinkSessionScopeUpgrade(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "acme"))
	b := e.Browser()
	if res, _ := b.Login("up@example.com", []string{"user_data"}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("first login: %d", res.StatusCode)
	}
	rows, _ := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub("up@example.com")})
	before := rows[0].Link

	s := a.createSession("user-9", teamReturn, "user_data", "vehicle_device_data")
	_, body := b.Get(s.URL)
	if !strings.Contains(body, `data-testid="upgrade-notice"`) {
		t.Errorf("signed-in owner is not told they are already connected")
	}
	newRow := body[strings.Index(body, `value="vehicle_device_data"`):]
	newRow = newRow[:strings.Index(newRow, "</div>")]
	oldRow := body[strings.Index(body, `value="user_data"`):]
	oldRow = oldRow[:strings.Index(oldRow, "</div>")]
	if !strings.Contains(newRow, `data-testid="new-scope"`) || strings.Contains(oldRow, `data-testid="new-scope"`) {
		t.Errorf("only vehicle_device_data should be marked new:\nnew row: %s\nold row: %s", newRow, oldRow)
	}
	back := ownerRoundTrip(t, e, b, s, "up@example.com", []string{"user_data", "vehicle_device_data"}, nil, true)
	res, out := a.claim(s.ID, back.Query().Get("code"), "user-9")
	if res.StatusCode != 200 {
		t.Fatalf("claim: %d %s", res.StatusCode, out)
	}
	after, err := e.Store.GetLink(context.Background(), before.ID)
	if err != nil {
		t.Fatalf("the link %s is gone after the upgrade: %v", before.ID, err)
	}
	if !slices.Contains(after.GrantedScopes, "vehicle_device_data") || !slices.Contains(after.GrantedScopes, "user_data") {
		t.Errorf("after the upgrade granted %v, want user_data and vehicle_device_data", after.GrantedScopes)
	}
	if !after.LinkedAt.Equal(before.LinkedAt) || after.ExternalRef != "user-9" {
		t.Errorf("linked_at %v → %v, external_ref %q", before.LinkedAt, after.LinkedAt, after.ExternalRef)
	}
	audit, _ := e.Store.AuditForLink(context.Background(), before.ID)
	if len(audit) < 3 {
		t.Errorf("history of the link: %d events, want its first link, the renewal and the claim", len(audit))
	}

	// Asked only for something new, the owner keeps what they had.
	s2 := a.createSession("user-9", teamReturn, "vehicle_location")
	_, body = b.Get(s2.URL)
	if !strings.Contains(body, `data-testid="kept-scopes"`) {
		t.Errorf("scopes already shared are not listed as kept")
	}
	ownerRoundTrip(t, e, b, s2, "up@example.com", []string{"vehicle_location"}, nil, true)
	after, _ = e.Store.GetLink(context.Background(), before.ID)
	for _, sc := range []string{"user_data", "vehicle_device_data", "vehicle_location"} {
		if !slices.Contains(after.GrantedScopes, sc) {
			t.Errorf("after asking only for vehicle_location, granted %v lacks %s", after.GrantedScopes, sc)
		}
	}
}
