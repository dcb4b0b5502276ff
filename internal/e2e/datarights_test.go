package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/testenv"
)

// TestBrowserActivityAndDataRights walks an owner on a phone through her
// link's activity, "Download my data" and "Delete everything": a team
// service uses her link, her account page lists it with the time; the
// downloaded file holds her data and no token; the erase asks once more,
// says what it deleted, links to Tesla's page, and leaves nothing behind.
//
// It runs alone, not beside the other browser tests (each walk has a fixed
// time budget, and several Chromiums at once share two cores).
func TestBrowserActivityAndDataRights(t *testing.T) {
	execPath := findBrowser(t)
	e := testenv.New(t, testenv.Options{})
	shots := newShotSaver(t)
	cleo := owner{key: "c", email: "cleo@example.com", width: 390, height: 844, mobile: true}
	b := newBrowser(t, e, execPath, cleo, shots)
	b.linkAndCheckAccount()

	ctx := context.Background()
	rows, err := e.Store.ListLinks(ctx, db.LinkFilter{OwnerSub: e.Sim.OwnerSub(cleo.email)})
	if err != nil || len(rows) != 1 {
		t.Fatalf("cleo's link: %v (%d)", err, len(rows))
	}
	linkID := rows[0].ID
	useLink(t, e, "fleet-dashboard", linkID, 2)

	b.do("reload the account page", chromedp.Navigate(e.URL+"/account"))
	b.page("account", e.URL+"/account", `[data-testid=activity]`)
	if got := b.texts(`[data-testid=activity] li[data-kind]`, "data-kind"); !slices.Equal(got, []string{"used", "linked"}) {
		b.fatalf("activity %v, want used, linked (newest first)", got)
	}
	used := b.texts(`[data-testid=activity] li[data-kind=used]`, "")
	if len(used) != 1 || !strings.Contains(used[0], "Used by fleet-dashboard") || strings.Contains(used[0], "that day") {
		b.fatalf("used entry %q", used)
	}
	for _, dt := range b.texts(`[data-testid=activity] time`, "datetime") {
		if _, err := time.Parse(time.RFC3339, dt); err != nil {
			b.fatalf("activity time datetime=%q: %v", dt, err)
		}
	}
	b.do("scroll to the activity", chromedp.ScrollIntoView(chromedp.CSS(`#activity-section`)))
	b.shot("account-activity")

	// Download my data.
	dir := t.TempDir()
	b.do("allow downloads", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}))
	b.click(`[data-testid=download-data]`)
	data := waitForDownload(b, dir)
	var exp struct {
		Owner struct {
			Email string `json:"email"`
		} `json:"owner"`
		Links []struct {
			ID string `json:"id"`
		} `json:"links"`
		Activity []struct {
			Action string `json:"action"`
		} `json:"activity"`
		APIClients []struct {
			Name string `json:"name"`
		} `json:"api_clients"`
	}
	if err := json.Unmarshal(data, &exp); err != nil {
		b.fatalf("downloaded file is not JSON: %v", err)
	}
	if exp.Owner.Email != cleo.email || len(exp.Links) != 1 || exp.Links[0].ID != linkID || len(exp.Activity) != 2 ||
		len(exp.APIClients) != 1 || exp.APIClients[0].Name != "fleet-dashboard" {
		b.fatalf("downloaded data: %s", data)
	}
	for _, s := range e.Sim.Secrets() {
		if len(s) >= 8 && strings.Contains(string(data), s) {
			b.fatalf("the download holds a simulator secret %.8s…", s)
		}
	}

	// Delete everything.
	b.click(`[data-testid=delete-everything]`)
	b.page("delete confirm", e.URL+"/account/delete", `[data-testid=delete-confirm]`)
	b.shot("delete-confirm")
	b.click(`[data-testid=delete-confirm]`)
	b.page("deleted", e.URL+"/account/delete", `[data-testid=deleted]`)
	b.shot("deleted")
	if got := b.texts(`[data-testid=deleted-list] li`, "data-what"); !slices.Equal(got, []string{"tokens", "links", "activity", "sessions", "owner"}) {
		b.fatalf("deleted list %v", got)
	}
	hrefs := b.texts(`[data-testid=tesla-revoke-link]`, "href")
	if len(hrefs) != 1 || !strings.Contains(hrefs[0], "revoke_client_id="+e.Sim.Config().ClientID) {
		b.fatalf("Tesla revoke link %v", hrefs)
	}
	if _, err := e.Store.GetOwnerBySub(ctx, e.Sim.OwnerSub(cleo.email)); err == nil {
		t.Errorf("cleo's owner row survived the erase")
	}
	b.do("open the account page after the erase", chromedp.Navigate(e.URL+"/account"))
	b.page("landing (account after the erase)", e.URL+"/", `[data-testid=connect-link]`)
	if leaks := e.Leaks(); len(leaks) > 0 {
		t.Errorf("simulator secrets in the service's logs: %v", leaks)
	}
}

// useLink makes a team service (a new API client) obtain the link's token
// n times over the API, then flushes the attribution.
func useLink(t *testing.T, e *testenv.Env, client, linkID string, n int) {
	t.Helper()
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CreateAPIClient(context.Background(), client, k.Display, k.Hash, []string{apikey.ScopeTokensIssue}); err != nil {
		t.Fatal(err)
	}
	hc := e.Server.Client()
	for range n {
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/links/"+linkID+"/token", nil)
		req.Header.Set("Authorization", "Bearer "+k.Secret)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("token for %s: %d", client, res.StatusCode)
		}
	}
	if err := e.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitForDownload waits for one finished file in dir and returns its content.
func waitForDownload(b *browser, dir string) []byte {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if strings.HasSuffix(en.Name(), ".json") {
				data, err := os.ReadFile(filepath.Join(dir, en.Name()))
				if err == nil && json.Valid(data) {
					return data
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	b.fatalf("no download in %s after %s: %v", dir, stepTimeout, fmt.Sprint(entries))
	return nil
}
