package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/testenv"
)

var kindRe = regexp.MustCompile(`<li data-kind="([a-z_]+)"`)

// The account page lists what happened to the link, newest first, a page
// at a time, with relative and exact times.
func TestAccountActivity(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann := e.Browser()
	signIn(t, e, ann, "ann@example.com")
	l := linkOf(t, e, 1)
	a := newAPI(t, e, newKey(t, e, "crm"))
	for range 3 {
		if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %s", res.StatusCode, body)
		}
	}
	if _, res, body := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK {
		t.Fatalf("forced refresh: %d %s", res.StatusCode, body)
	}
	if err := e.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, body := ann.Get("/account")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("account: %d", res.StatusCode)
	}
	kinds := kindRe.FindAllStringSubmatch(body, -1)
	var got []string
	for _, k := range kinds {
		got = append(got, k[1])
	}
	// Newest first: the uses are written when the recorder flushes.
	if !slices.Equal(got, []string{"used", "refreshed", "linked"}) {
		t.Fatalf("activity kinds %v, want used, refreshed, linked", got)
	}
	for _, want := range []string{"Used by crm", "Access renewed with Tesla", "Sharing: Profile, Vehicle data",
		`<time datetime="`} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(body, "activity-older") {
		t.Errorf("an Older link with only 3 entries")
	}

	// 25 more entries: two pages of 20.
	for i := range 25 {
		if err := e.Store.AddAudit(context.Background(), db.AuditEvent{At: time.Now().Add(-time.Duration(i+1) * time.Hour),
			OwnerID: l.OwnerID, LinkID: l.ID, Actor: "owner", Action: db.ActionRenewed}); err != nil {
			t.Fatal(err)
		}
	}
	_, body = ann.Get("/account")
	if n := len(kindRe.FindAllString(body, -1)); n != 20 || !strings.Contains(body, `href="/account?page=2#activity-section"`) {
		t.Errorf("page 1: %d entries, older link %v", n, strings.Contains(body, "page=2"))
	}
	res, body = ann.Get("/account?page=2")
	if n := len(kindRe.FindAllString(body, -1)); res.StatusCode != http.StatusOK || n != 8 ||
		!strings.Contains(body, `href="/account#activity-section"`) || strings.Contains(body, "activity-older") {
		t.Errorf("page 2: %d, %d entries", res.StatusCode, n)
	}
	if res, body := ann.Get("/account?page=9"); res.StatusCode != http.StatusOK || !strings.Contains(body, "No older activity.") {
		t.Errorf("page 9: %d", res.StatusCode)
	}
	for _, q := range []string{"?page=0", "?page=-1", "?page=abc", "?page=01", "?page=99999999999", "?page=1&page=2x", "?sort=asc"} {
		res, body := ann.Get("/account" + q)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "data-testid=\"error-reference\"") {
			t.Errorf("/account%s: %d, want a friendly 400 page", q, res.StatusCode)
		}
	}
	// Another owner sees none of it.
	bob := e.Browser()
	signIn(t, e, bob, "bob@example.com")
	_, body = bob.Get("/account")
	if strings.Contains(body, "Used by crm") || len(kindRe.FindAllString(body, -1)) != 1 {
		t.Errorf("bob's page shows ann's activity")
	}
}

type exportOut struct {
	Format string `json:"format"`
	Owner  struct {
		Sub   string `json:"tesla_account_id"`
		Email string `json:"email"`
	} `json:"owner"`
	Links []struct {
		ID            string   `json:"id"`
		Status        string   `json:"status"`
		GrantedScopes []string `json:"granted_scopes"`
		HoldsTokens   bool     `json:"holds_tokens"`
	} `json:"links"`
	Activity []struct {
		Action    string `json:"action"`
		APIClient string `json:"api_client"`
	} `json:"activity"`
	APIClients []struct {
		Name       string    `json:"name"`
		LastUsedAt time.Time `json:"last_used_at"`
	} `json:"api_clients"`
}

// "Download my data" is a JSON file with the owner, the link without
// tokens, the activity and the API clients that used the link.
func TestDownloadMyData(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann := e.Browser()
	signIn(t, e, ann, "ann@example.com")
	signIn(t, e, e.Browser(), "bob@example.com")
	l := linkOf(t, e, 1)
	a := newAPI(t, e, newKey(t, e, "crm"))
	if _, res, _ := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("token: %d", res.StatusCode)
	}
	if err := e.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, body := ann.Get("/account/data")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
		!regexp.MustCompile(`^attachment; filename="test-service-data-\d{4}-\d\d-\d\d\.json"$`).MatchString(res.Header.Get("Content-Disposition")) ||
		res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download: %d %v", res.StatusCode, res.Header)
	}
	var got exportOut
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if got.Format != "teslalink-owner-export/1" || got.Owner.Email != "ann@example.com" || got.Owner.Sub != e.Sim.OwnerSub("ann@example.com") {
		t.Errorf("owner %+v", got.Owner)
	}
	if len(got.Links) != 1 || got.Links[0].ID != l.ID || got.Links[0].Status != "active" || !got.Links[0].HoldsTokens ||
		!sameSet(got.Links[0].GrantedScopes, l.GrantedScopes) {
		t.Errorf("links %+v", got.Links)
	}
	if !slices.ContainsFunc(got.Activity, func(a struct {
		Action    string `json:"action"`
		APIClient string `json:"api_client"`
	}) bool {
		return a.Action == db.ActionUsed && a.APIClient == "crm"
	}) {
		t.Errorf("activity %+v lacks crm's use", got.Activity)
	}
	if len(got.APIClients) != 1 || got.APIClients[0].Name != "crm" || got.APIClients[0].LastUsedAt.IsZero() {
		t.Errorf("api clients %+v", got.APIClients)
	}
	if strings.Contains(body, "bob@example.com") || strings.Contains(body, "sealed") {
		t.Errorf("export holds another owner's data or a sealed column")
	}
	if leaks := e.Leaks(ann); len(leaks) > 0 {
		t.Errorf("secrets in the export or logs: %v", leaks)
	}
	if res, _ := e.Browser().Get("/account/data"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("signed out: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := ann.Get("/account/data?format=csv"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown parameter: %d", res.StatusCode)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// "Delete everything" asks once more, needs the form's CSRF token, then
// deletes tokens, links, sessions, activity and the owner row, and says so.
func TestDeleteEverything(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann, annPhone := e.Browser(), e.Browser()
	signIn(t, e, ann, "ann@example.com")
	signIn(t, e, annPhone, "ann@example.com")
	bob := e.Browser()
	signIn(t, e, bob, "bob@example.com")
	l := linkOf(t, e, 1)
	a := newAPI(t, e, newKey(t, e, "crm"))
	if _, res, _ := a.token(l.ID, ""); res.StatusCode != http.StatusOK { // warms the token cache
		t.Fatalf("token: %d", res.StatusCode)
	}
	res, body := ann.Get("/account/delete")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="delete-form"`) || !strings.Contains(body, "ann@example.com") {
		t.Fatalf("confirm page: %d", res.StatusCode)
	}
	csrf := csrfOf(t, body)
	if res, _ := ann.PostForm("/account/delete", url.Values{"csrf": {"forged"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("forged csrf: %d", res.StatusCode)
	}
	if n := countRows(t, e, "owners"); n != 2 {
		t.Fatalf("a refused erase deleted something: %d owners", n)
	}
	res, body = ann.PostForm("/account/delete", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="deleted"`) {
		t.Fatalf("erase: %d", res.StatusCode)
	}
	for what, text := range map[string]string{"tokens": "2 keys to your Tesla account", "links": "1 connection with its permissions",
		"sessions": "2 sign-ins"} {
		if !strings.Contains(body, text) {
			t.Errorf("deleted page lacks %s: %q", what, text)
		}
	}
	if !strings.Contains(body, "revoke_client_id="+e.Sim.Config().ClientID) {
		t.Errorf("deleted page lacks Tesla's revoke link")
	}
	conn := sqlConn(t, e)
	var left int
	if err := conn.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM owners WHERE sub = $1) + (SELECT count(*) FROM links WHERE id = $2) +
			(SELECT count(*) FROM sessions WHERE owner_id = $3) + (SELECT count(*) FROM activity WHERE owner_id = $3 OR link_id = $2) +
			(SELECT count(*) FROM link_usage WHERE link_id = $2)`,
		e.Sim.OwnerSub("ann@example.com"), l.ID, l.OwnerID).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows about ann left (%v)", left, err)
	}
	for _, b := range []*testenv.Browser{ann, annPhone} {
		if res, _ := b.Get("/account"); res.StatusCode != http.StatusSeeOther {
			t.Errorf("ann's session after the erase: %d", res.StatusCode)
		}
	}
	_, res, tokBody := a.token(l.ID, "")
	wantProblem(t, res, tokBody, http.StatusNotFound, "not-found")
	if res, body := bob.Get("/account"); res.StatusCode != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Errorf("bob after ann's erase: %d", res.StatusCode)
	}
}

// DELETE /api/v1/owners/{sub} erases an owner for the team (scope owners:erase).
func TestAPIEraseOwner(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann := e.Browser()
	signIn(t, e, ann, "ann@example.com")
	l := linkOf(t, e, 1)
	sub := e.Sim.OwnerSub("ann@example.com")
	a := newAPI(t, e, newKey(t, e, "crm"))
	narrow := a.withKey(newKey(t, e, "reader", apikey.ScopeLinksRead, apikey.ScopeTokensIssue, apikey.ScopeLinksDelete))
	if _, res, _ := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("token: %d", res.StatusCode)
	}
	res, body := narrow.do(http.MethodDelete, "/api/v1/owners/"+sub, "")
	wantProblem(t, res, body, http.StatusForbidden, "insufficient-scope")
	res, body = a.do(http.MethodDelete, "/api/v1/owners/"+sub+"?force=1", "")
	wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
	res, body = a.do(http.MethodDelete, "/api/v1/owners/a%00b", "")
	wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
	if n := countRows(t, e, "owners"); n != 1 {
		t.Fatalf("refused erases deleted the owner")
	}

	res, body = a.do(http.MethodDelete, "/api/v1/owners/"+sub, "")
	var got struct {
		OwnerSub string   `json:"owner_sub"`
		LinkIDs  []string `json:"link_ids"`
		Tokens   int      `json:"tokens"`
		Sessions int      `json:"sessions"`
		Activity int      `json:"activity"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.OwnerSub != sub ||
		!slices.Equal(got.LinkIDs, []string{l.ID}) || got.Tokens != 2 || got.Sessions != 1 || got.Activity < 1 {
		t.Fatalf("erase: %d %s", res.StatusCode, body)
	}
	res, body = a.do(http.MethodDelete, "/api/v1/owners/"+sub, "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	_, res, body = a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	if res, _ := ann.Get("/account"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the owner's session survived: %d", res.StatusCode)
	}
	if !strings.Contains(e.Logs.String(), `"by":"api:crm"`) || strings.Contains(e.Logs.String(), `"sub":"`+sub) {
		t.Errorf("erase log line: want who erased, never the sub")
	}
}
