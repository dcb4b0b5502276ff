package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/linksession"
	"teslalink/internal/testenv"
)

type sessionOut struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

type claimedLink struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	ExternalRef *string `json:"external_ref"`
	APIClient   *string `json:"api_client"`
}

// createSession asks for a link session and wants 201.
func (a *api) createSession(ref, returnURL string, scopes ...string) sessionOut {
	a.t.Helper()
	body := map[string]any{"external_ref": ref, "return_url": returnURL, "state": "st-" + ref}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	b, _ := json.Marshal(body)
	res, out := a.do(http.MethodPost, "/api/v1/link-sessions", string(b))
	if res.StatusCode != http.StatusCreated {
		a.t.Fatalf("create link session: %d %s", res.StatusCode, out)
	}
	var s sessionOut
	if err := json.Unmarshal(out, &s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

func (a *api) claim(id, code, ref string) (*http.Response, []byte) {
	a.t.Helper()
	b, _ := json.Marshal(map[string]string{"code": code, "external_ref": ref})
	return a.do(http.MethodPost, "/api/v1/link-sessions/"+id+"/claim", string(b))
}

// finishLinked completes a session as the owner flow does after Tesla,
// for the given link, and returns the code sent to the return URL.
func finishLinked(t *testing.T, e *testenv.Env, id, linkID string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.LinkSessions.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	back, err := e.LinkSessions.Finish(ctx, id, linksession.Outcome{Status: db.SessionLinked, LinkID: linkID})
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	u, _ := url.Parse(back)
	q := u.Query()
	if q.Get("session_id") != id || q.Get("status") != "linked" || q.Get("code") == "" {
		t.Fatalf("return URL %s lacks session_id, status=linked or code", back)
	}
	return q.Get("code")
}

func externalRefOf(t *testing.T, e *testenv.Env, linkID string) string {
	t.Helper()
	l, err := e.Store.GetLink(context.Background(), linkID)
	if err != nil {
		t.Fatal(err)
	}
	return l.ExternalRef
}

// TestLinkSessionCreate checks the create endpoint's answer and its refusals.
func TestLinkSessionCreate(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "app"))

	s := a.createSession("user-42", "http://127.0.0.1:9/tesla/done", "vehicle_device_data")
	if !strings.HasPrefix(s.URL, e.URL+"/link/") || !strings.HasSuffix(s.URL, "/"+s.ID) {
		t.Errorf("url %q is not %s/link/<id>", s.URL, e.URL)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s.ID, "ls_"))
	if err != nil || len(raw)*8 < 128 {
		t.Errorf("id %q carries %d bits, want at least 128", s.ID, len(raw)*8)
	}
	if d := s.ExpiresAt.Sub(e.Sim.Clock().Now()); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("expires_at in %v, want 30m", d)
	}
	if s2 := a.createSession("user-42", "http://127.0.0.1:9/tesla/done"); s2.ID == s.ID {
		t.Error("two sessions got the same id")
	}

	for _, tc := range []struct {
		name, body, slug string
		status           int
		detail           string
	}{
		{"unknown fields", `{"external_ref":"u","return_url":"http://127.0.0.1/x","link_id":"x","zeta":1}`, "invalid-request", 400, "link_id, zeta"},
		{"no external_ref", `{"return_url":"http://127.0.0.1/x"}`, "invalid-request", 400, "external_ref"},
		{"long external_ref", `{"external_ref":"` + strings.Repeat("x", 201) + `","return_url":"http://127.0.0.1/x"}`, "invalid-request", 400, "external_ref"},
		{"control char in external_ref", `{"external_ref":"a\u0000b","return_url":"http://127.0.0.1/x"}`, "invalid-request", 400, "external_ref"},
		{"no return_url", `{"external_ref":"u"}`, "invalid-request", 400, "return_url"},
		{"unknown scope", `{"external_ref":"u","return_url":"http://127.0.0.1/x","scopes":["admin"]}`, "invalid-request", 400, "admin"},
		{"no scopes", `{"external_ref":"u","return_url":"http://127.0.0.1/x","scopes":[]}`, "invalid-request", 400, "scopes"},
		{"wrong type", `{"external_ref":42,"return_url":"http://127.0.0.1/x"}`, "invalid-request", 400, "external_ref"},
		{"not an object", `["x"]`, "invalid-request", 400, "JSON object"},
	} {
		res, body := a.do(http.MethodPost, "/api/v1/link-sessions", tc.body)
		wantProblem(t, res, body, tc.status, tc.slug)
		if !strings.Contains(string(body), tc.detail) {
			t.Errorf("%s: problem %s does not name %q", tc.name, body, tc.detail)
		}
	}
	res, body := a.withKey(newKey(t, e, "reader", apikey.ScopeLinksRead)).do(http.MethodPost, "/api/v1/link-sessions",
		`{"external_ref":"u","return_url":"http://127.0.0.1/x"}`)
	wantProblem(t, res, body, 403, "insufficient-scope")
}

// TestLinkSessionReturnURLAllowlist refuses every return URL that does not
// match LINK_RETURN_URLS as a parsed URL, tricky forms included.
func TestLinkSessionReturnURLAllowlist(t *testing.T) {
	t.Parallel()
	allow, err := linksession.ParseAllowlist("https://app.example.com/tesla, http://127.0.0.1:8443/cb/")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.New(t, testenv.Options{ReturnURLs: allow})
	a := newAPI(t, e, newKey(t, e, "app"))
	for _, ok := range []string{
		"https://app.example.com/tesla",
		"https://app.example.com/tesla/done",
		"https://app.example.com/tesla/done?tab=cars",
		"https://APP.example.com:443/tesla/x",
		"http://127.0.0.1:8443/cb/back",
	} {
		a.createSession("u1", ok)
	}
	for _, bad := range []string{
		"https://user@app.example.com/tesla",                   // userinfo
		"https://user:pw@app.example.com/tesla/done",           // userinfo with password
		"https://app.example.com@evil.example/tesla",           // userinfo that hides the host
		"https://app.example.com:8443/tesla",                   // port mismatch
		"http://app.example.com/tesla",                         // scheme mismatch
		"http://127.0.0.1/cb/back",                             // port mismatch (default 80)
		"https://app.example.com/teslax",                       // prefix without a segment boundary
		"https://app.example.com/tesla-evil/done",              // same
		"https://app.example.com/tesla/../admin",               // dot segment
		"https://app.example.com/tesla/%2e%2e/admin",           // encoded dot segment
		"https://app.example.com/tesla/./x",                    // single dot segment
		"https://app.example.com/tesla%2f..%2fadmin",           // encoded slash
		`https://app.example.com\@evil.example/tesla`,          // backslash
		`https://app.example.com/tesla\..\admin`,               // backslash in the path
		"//app.example.com/tesla",                              // scheme-relative
		"/tesla/done",                                          // relative
		"https://evil.example/tesla",                           // other host
		"https://app.example.com.evil.example/tesla",           // host suffix
		"https://app.example.com/tesla#frag",                   // fragment
		"javascript:alert(1)",                                  // not http(s)
		"https:app.example.com/tesla",                          // opaque
		"https://app.example.com/tesla/\tdone",                 // control character
		"https://app.example.com/" + strings.Repeat("a", 2100), // too long
	} {
		b, _ := json.Marshal(map[string]string{"external_ref": "u1", "return_url": bad})
		res, body := a.do(http.MethodPost, "/api/v1/link-sessions", string(b))
		if res.StatusCode == http.StatusCreated {
			t.Errorf("return_url %q was allowed", bad)
			continue
		}
		wantProblem(t, res, body, http.StatusUnprocessableEntity, "return-url-not-allowed")
	}

	// No allowlist configured: every session is refused, naming the variable.
	none := testenv.New(t, testenv.Options{ReturnURLs: &linksession.Allowlist{}})
	na := newAPI(t, none, newKey(t, none, "app"))
	res, body := na.do(http.MethodPost, "/api/v1/link-sessions", `{"external_ref":"u","return_url":"https://app.example.com/tesla"}`)
	wantProblem(t, res, body, http.StatusUnprocessableEntity, "return-url-not-allowed")
	if !strings.Contains(string(body), "LINK_RETURN_URLS") {
		t.Errorf("refusal without an allowlist does not name LINK_RETURN_URLS: %s", body)
	}
}

// TestLinkSessionClaim: only a claim with the session's code and the same
// external_ref binds the link; a different external_ref, a reused code, an
// expired code, a wrong code or another client's claim bind nothing.
func TestLinkSessionClaim(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "app"))
	other := a.withKey(newKey(t, e, "other-app"))
	l := linkOwner(t, e, "claim@example.com")
	const ret = "http://127.0.0.1:9/done"

	// Not finished yet: nothing to claim.
	s0 := a.createSession("user-1", ret)
	res, body := a.claim(s0.ID, "whatever", "user-1")
	wantProblem(t, res, body, 409, "link-session-not-linked")

	// A forwarded URL: the claim comes for another user. Refused, code spent.
	s1 := a.createSession("user-1", ret)
	code := finishLinked(t, e, s1.ID, l.ID)
	res, body = a.claim(s1.ID, code, "attacker-7")
	wantProblem(t, res, body, 409, "claim-mismatch")
	if ref := externalRefOf(t, e, l.ID); ref != "" {
		t.Fatalf("a mismatched claim bound the link to %q", ref)
	}
	res, body = a.claim(s1.ID, code, "user-1")
	wantProblem(t, res, body, 409, "claim-code-used")
	if ref := externalRefOf(t, e, l.ID); ref != "" {
		t.Fatalf("a claim with a spent code bound the link to %q", ref)
	}

	// Expired code.
	s2 := a.createSession("user-1", ret)
	code = finishLinked(t, e, s2.ID, l.ID)
	e.Sim.Clock().Advance(10*time.Minute + time.Second)
	res, body = a.claim(s2.ID, code, "user-1")
	wantProblem(t, res, body, 410, "claim-code-expired")
	if ref := externalRefOf(t, e, l.ID); ref != "" {
		t.Fatalf("an expired code bound the link to %q", ref)
	}

	// Wrong code, another API client, a malformed id: nothing bound.
	s3 := a.createSession("user-1", ret)
	code = finishLinked(t, e, s3.ID, l.ID)
	res, body = a.claim(s3.ID, code+"x", "user-1")
	wantProblem(t, res, body, 403, "claim-code-invalid")
	res, body = other.claim(s3.ID, code, "user-1")
	wantProblem(t, res, body, 404, "not-found")
	res, body = a.claim("ls_nope", code, "user-1")
	wantProblem(t, res, body, 404, "not-found")
	res, body = a.do(http.MethodPost, "/api/v1/link-sessions/"+s3.ID+"/claim", `{"code":"`+code+`","external_ref":"user-1","link":"x"}`)
	wantProblem(t, res, body, 400, "invalid-request")
	if ref := externalRefOf(t, e, l.ID); ref != "" {
		t.Fatalf("a refused claim bound the link to %q", ref)
	}

	// The right claim binds, once.
	res, body = a.claim(s3.ID, code, "user-1")
	if res.StatusCode != 200 {
		t.Fatalf("claim: %d %s", res.StatusCode, body)
	}
	var got claimedLink
	_ = json.Unmarshal(body, &got)
	if got.ID != l.ID || got.ExternalRef == nil || *got.ExternalRef != "user-1" || got.APIClient == nil || *got.APIClient != "app" {
		t.Fatalf("claimed link %s, want id %s, external_ref user-1, api_client app", body, l.ID)
	}
	res, body = a.claim(s3.ID, code, "user-1")
	wantProblem(t, res, body, 409, "claim-code-used")

	// The filter finds it; an unclaimed link carries nulls.
	res, body = a.do(http.MethodGet, "/api/v1/links?external_ref=user-1", "")
	var list struct{ Links []claimedLink }
	_ = json.Unmarshal(body, &list)
	if res.StatusCode != 200 || len(list.Links) != 1 || list.Links[0].ID != l.ID {
		t.Fatalf("links?external_ref=user-1: %d %s", res.StatusCode, body)
	}
	unclaimed := linkOwner(t, e, "direct@example.com")
	res, body = a.do(http.MethodGet, "/api/v1/links/"+unclaimed.ID, "")
	if res.StatusCode != 200 || !strings.Contains(string(body), `"external_ref":null`) || !strings.Contains(string(body), `"api_client":null`) {
		t.Fatalf("unclaimed link: %d %s", res.StatusCode, body)
	}
	res, body = a.do(http.MethodGet, "/api/v1/links?external_ref=", "")
	wantProblem(t, res, body, 400, "invalid-request")
	res, body = a.do(http.MethodGet, "/api/v1/links?externalref=user-1", "")
	wantProblem(t, res, body, 400, "invalid-request")

	// Relink rule: the same Tesla account claimed for another user moves
	// the link (same id); the newest claim wins.
	s4 := a.createSession("user-2", ret)
	code = finishLinked(t, e, s4.ID, l.ID)
	if res, body = a.claim(s4.ID, code, "user-2"); res.StatusCode != 200 {
		t.Fatalf("second claim: %d %s", res.StatusCode, body)
	}
	if ref := externalRefOf(t, e, l.ID); ref != "user-2" {
		t.Fatalf("after the newer claim external_ref = %q, want user-2", ref)
	}
	res, body = a.do(http.MethodGet, "/api/v1/links?external_ref=user-1", "")
	if res.StatusCode != 200 || strings.Contains(string(body), l.ID) {
		t.Fatalf("user-1 still lists the moved link: %s", body)
	}
}
