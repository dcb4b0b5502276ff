package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"teslalink/internal/apikey"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// teamApp is a tiny stand-in for a team's web app: its return handler
// claims the link for the user signed in to it (here always teamUser) and
// shows what it got. The claim runs in the browser's round trip, as the
// walkthrough in the README asks.
type teamApp struct {
	t       *testing.T
	srv     *httptest.Server
	e       *testenv.Env
	key     string
	mu      sync.Mutex
	results []claimResult
}

type claimResult struct {
	query      map[string]string
	status     int
	link       map[string]any
	problemRaw string
}

const teamUser = "user-42"

func newTeamApp(t *testing.T, e *testenv.Env, key string) *teamApp {
	a := &teamApp{t: t, e: e, key: key}
	a.srv = httptest.NewServer(http.HandlerFunc(a.done))
	t.Cleanup(a.srv.Close)
	return a
}

// createSession is the team's backend starting a link for teamUser.
func (a *teamApp) createSession(scopes ...string) (id, sessionURL string) {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"external_ref": teamUser, "return_url": a.srv.URL + "/tesla/done",
		"scopes": scopes, "state": "cart-7"})
	var out struct{ ID, URL string }
	if status, raw := a.api(http.MethodPost, "/api/v1/link-sessions", body, &out); status != http.StatusCreated {
		a.t.Fatalf("create link session: %d %s", status, raw)
	}
	return out.ID, out.URL
}

func (a *teamApp) api(method, path string, body []byte, out any) (int, string) {
	req, _ := http.NewRequest(method, a.e.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // testenv's own certificate
	res, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		_ = json.Unmarshal(raw, out)
	}
	return res.StatusCode, string(raw)
}

// done is the return URL: claim, then say what happened.
func (a *teamApp) done(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/tesla/done" {
		http.NotFound(w, r) // the browser's /favicon.ico
		return
	}
	q := r.URL.Query()
	res := claimResult{query: map[string]string{}}
	for _, k := range []string{"session_id", "status", "state", "code"} {
		res.query[k] = q.Get(k)
	}
	if q.Get("status") == "linked" {
		body, _ := json.Marshal(map[string]string{"code": q.Get("code"), "external_ref": teamUser})
		res.status, res.problemRaw = a.api(http.MethodPost, "/api/v1/link-sessions/"+q.Get("session_id")+"/claim", body, &res.link)
	}
	a.mu.Lock()
	a.results = append(a.results, res)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	bound, _ := res.link["external_ref"].(string)
	fmt.Fprintf(w, `<!doctype html><meta name="viewport" content="width=device-width"><title>Team app</title><h1>Team app</h1>
<p>status: <span data-testid="status">%s</span></p><p>state: <span data-testid="state">%s</span></p>
<p>code received: <span data-testid="has-code">%v</span></p><p>linked to: <span data-testid="bound">%s</span></p>`,
		html.EscapeString(q.Get("status")), html.EscapeString(q.Get("state")), q.Get("code") != "", html.EscapeString(bound))
}

// TestBrowserLinkSession: a team's backend starts a link session; the owner
// opens its URL in Chromium, sees who asks, unticks one scope, signs in at
// Tesla and lands on the team's return URL with the state and a code; the
// team's handler claims the link there and it is bound to the team's user.
// The used URL then shows a friendly page, not Tesla.
func TestBrowserLinkSession(t *testing.T) {
	t.Parallel()
	execPath := findBrowser(t)
	e := testenv.New(t, testenv.Options{Sim: func(c *teslasim.Config) {
		c.Owners = append(c.Owners, teslasim.Owner{Email: "sam@example.com", Name: "Sam Owner"})
	}})
	shots := newShotSaver(t)
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Store.CreateAPIClient(ctx, "acme", k.Display, k.Hash, []string{apikey.ScopeLinksCreate, apikey.ScopeLinksRead}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.SetAPIClientDisplayName(ctx, "acme", "Acme Charging"); err != nil {
		t.Fatal(err)
	}
	app := newTeamApp(t, e, k.Secret)
	id, sessionURL := app.createSession("user_data", "vehicle_device_data", "vehicle_cmds")

	b := newBrowser(t, e, execPath, owner{key: "s", email: "sam@example.com", width: 412, height: 915, mobile: true}, shots)
	b.do("open the session URL", chromedp.Navigate(sessionURL))
	b.page("link session", sessionURL, `[data-testid=link-session-form]`)
	if got := b.texts(`[data-testid=link-session-heading]`, ""); len(got) != 1 || !strings.Contains(got[0], "Acme Charging") {
		b.fatalf("heading %v does not name the app", got)
	}
	if got := b.texts(`[data-testid=link-session-client]`, ""); len(got) != 1 || !strings.Contains(got[0], "Test Service") {
		b.fatalf("intro %v does not name the service", got)
	}
	if got := b.checkedScopes(`[data-testid=link-session-form] input[type=checkbox][name=scope]`); !sameSet(got, []string{"user_data", "vehicle_device_data", "vehicle_cmds"}) {
		b.fatalf("ticked %v, want the three scopes asked for", got)
	}
	b.shot("session")
	b.click(`#scope-vehicle_cmds`)
	b.click(`[data-testid=continue]`)

	b.page("Tesla sign-in", e.Sim.AuthorizeURL(), `form input[name=password]`)
	if offered := b.texts(`input[type=checkbox][name=scope]`, "value"); !sameSet(offered, []string{"user_data", "vehicle_device_data"}) {
		b.fatalf("Tesla's page offers %v, want what was left ticked", offered)
	}
	b.do("sign in at Tesla",
		chromedp.Clear(chromedp.CSS(`input[name=email]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "sam@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), teslasim.DefaultPassword),
	)
	b.shot("session-tesla")
	b.click(`button[name=decision][value=allow]`)

	b.page("team app", app.srv.URL+"/tesla/done?", `[data-testid=status]`)
	b.shot("session-returned")
	if got := b.texts(`[data-testid=status]`, ""); len(got) != 1 || got[0] != "linked" {
		b.fatalf("status %v, want linked", got)
	}
	if got := b.texts(`[data-testid=state]`, ""); len(got) != 1 || got[0] != "cart-7" {
		b.fatalf("state %v, want cart-7", got)
	}
	if got := b.texts(`[data-testid=bound]`, ""); len(got) != 1 || got[0] != teamUser {
		b.fatalf("the claim bound %v, want %s", got, teamUser)
	}
	app.mu.Lock()
	results := app.results
	app.mu.Unlock()
	if len(results) != 1 || results[0].query["session_id"] != id || results[0].query["code"] == "" || results[0].status != http.StatusOK {
		t.Fatalf("team app saw %+v", results)
	}
	linkID, _ := results[0].link["id"].(string)
	var list struct {
		Links []struct {
			ID          string  `json:"id"`
			ExternalRef *string `json:"external_ref"`
			APIClient   *string `json:"api_client"`
		} `json:"links"`
	}
	if status, raw := app.api(http.MethodGet, "/api/v1/links?external_ref="+teamUser, nil, &list); status != 200 ||
		len(list.Links) != 1 || list.Links[0].ID != linkID || list.Links[0].APIClient == nil || *list.Links[0].APIClient != "acme" {
		t.Fatalf("links of %s: %d %s", teamUser, status, raw)
	}

	// The URL worked once: opening it again shows a friendly page.
	b.do("open the used session URL", chromedp.Navigate(sessionURL))
	b.page("used session", sessionURL, `[data-testid=error-reference]`)
	b.shot("session-used")
	if loc := b.location(); !strings.HasPrefix(loc, e.URL) {
		b.fatalf("a used session URL went to %s", loc)
	}

	// Asked for more later, the owner (signed in since the callback) sees
	// which permission is new and what they already share.
	_, moreURL := app.createSession("vehicle_device_data", "vehicle_location")
	b.do("open a session asking for more", chromedp.Navigate(moreURL))
	b.page("upgrade", moreURL, `[data-testid=upgrade-notice]`)
	b.shot("session-upgrade")
	if got := b.texts(`label:has([data-testid=new-scope])`, "for"); !sameSet(got, []string{"scope-vehicle_location"}) {
		b.fatalf("marked new: %v, want only vehicle_location", got)
	}
	if got := b.texts(`[data-testid=kept-scopes] li[data-scope]`, "data-scope"); !sameSet(got, []string{"user_data"}) {
		b.fatalf("kept: %v, want user_data", got)
	}
	if leaks := e.Leaks(); len(leaks) > 0 {
		t.Errorf("simulator secrets in the service's logs: %v", leaks)
	}
}
