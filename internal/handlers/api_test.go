package handlers_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

func TestAPIKeyRequired(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "keys@example.com")
	a := newAPI(t, e, "")

	for _, key := range []string{"", "tlk_short", "tlk_" + strings.Repeat("A", 43), "Basic abc"} {
		res, body := a.withKey(key).do(http.MethodPost, "/api/v1/links/"+l.ID+"/token", "")
		wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")
		if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("key %q: WWW-Authenticate = %q", key, res.Header.Get("WWW-Authenticate"))
		}
	}
	// Unauthenticated callers cannot tell whether a link exists.
	res, body := a.withKey("").do(http.MethodGet, "/api/v1/links/00000000-0000-0000-0000-000000000000", "")
	wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")

	// A key without tokens:issue may read links but not take tokens.
	reader := a.withKey(newKey(t, e, "reader", apikey.ScopeLinksRead))
	res, body = reader.do(http.MethodPost, "/api/v1/links/"+l.ID+"/token", "")
	wantProblem(t, res, body, http.StatusForbidden, "insufficient-scope")
	if !strings.Contains(res.Header.Get("WWW-Authenticate"), `scope="tokens:issue"`) {
		t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
	}
	res, body = reader.do(http.MethodDelete, "/api/v1/links/"+l.ID, "")
	wantProblem(t, res, body, http.StatusForbidden, "insufficient-scope")
	if res, body = reader.do(http.MethodGet, "/api/v1/links/"+l.ID, ""); res.StatusCode != http.StatusOK {
		t.Errorf("reader GET link: %d %s", res.StatusCode, body)
	}
	// A key with only tokens:issue cannot list.
	issuer := a.withKey(newKey(t, e, "issuer", apikey.ScopeTokensIssue))
	res, body = issuer.do(http.MethodGet, "/api/v1/links", "")
	wantProblem(t, res, body, http.StatusForbidden, "insufficient-scope")
	if _, res, body = issuer.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Errorf("issuer token: %d %s", res.StatusCode, body)
	}
}

// A revoked key stops working at once, on every instance.
func TestAPIKeyRevokedAtOnceEverywhere(t *testing.T) {
	t.Parallel()
	e1 := testenv.New(t, testenv.Options{})
	e2 := testenv.New(t, testenv.Options{DatabaseURL: e1.DBURL, Sim0: e1.Sim, TokenKeys: e1.KeySpec})
	l := linkOwner(t, e1, "revkey@example.com")
	key := newKey(t, e1, "billing")
	other := newKey(t, e1, "fleet")
	a1, a2 := newAPI(t, e1, key), newAPI(t, e2, key)
	waitCacheLive(t, e1, e2)
	for _, a := range []*api{a1, a2} {
		for i := 0; i < 2; i++ { // the second answer comes from the token cache
			if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
				t.Fatalf("before revoke: %d %s", res.StatusCode, body)
			}
		}
	}
	if e1.Cache.Len() != 1 || e2.Cache.Len() != 1 {
		t.Fatalf("token not cached on both instances: %d, %d", e1.Cache.Len(), e2.Cache.Len())
	}
	if _, err := e1.Store.RevokeAPIClient(context.Background(), "billing"); err != nil {
		t.Fatal(err)
	}
	// The revoke's change notification reaches every instance at commit; allow
	// it the moment it takes to arrive, then no request may pass.
	for _, a := range []*api{a1, a2} {
		start := time.Now()
		for {
			_, res, body := a.token(l.ID, "")
			if res.StatusCode == http.StatusUnauthorized {
				wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("revoked key still accepted after %v: %d", time.Since(start), res.StatusCode)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("revocation effective after %v", time.Since(start))
		_, res, body := a.token(l.ID, "")
		wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")
		res, body = a.do(http.MethodGet, "/api/v1/links", "")
		wantProblem(t, res, body, http.StatusUnauthorized, "unauthenticated")
	}
	// Other keys are unaffected.
	if _, res, body := a2.withKey(other).token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Errorf("other key: %d %s", res.StatusCode, body)
	}
	if _, err := e1.Store.RevokeAPIClient(context.Background(), "nobody"); err == nil {
		t.Error("revoking an unknown client succeeded")
	}
}

func TestAPITokenAndLinks(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ada := linkOwner(t, e, "ada@example.com", "user_data", "vehicle_device_data")
	bob := linkOwner(t, e, "bob@example.com", "user_data")
	a := newAPI(t, e, newKey(t, e, "dispatch"))

	tok, res, body := a.token(ada.ID, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", res.StatusCode, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.LinkID != ada.ID || tok.Region != "na" ||
		tok.FleetAPIBaseURL != e.Sim.RegionBaseURL("na") || !slices.Contains(tok.Scopes, "vehicle_device_data") ||
		!tok.ExpiresAt.After(e.Sim.Clock().Now().Add(time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	// The token works at the Fleet API.
	req, _ := http.NewRequest(http.MethodGet, tok.FleetAPIBaseURL+"/api/1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if fres, err := http.DefaultClient.Do(req); err != nil || fres.StatusCode != http.StatusOK {
		t.Errorf("fleet users/me with the token: %v %v", err, fres)
	} else {
		fres.Body.Close()
	}
	// A second call returns the same token without asking Tesla.
	refreshes := e.Sim.Calls("token.refresh_token")
	if tok2, _, _ := a.token(ada.ID, `{"scopes": ["vehicle_device_data"]}`); tok2.AccessToken != tok.AccessToken {
		t.Error("second call returned another token")
	}
	if n := e.Sim.Calls("token.refresh_token"); n != refreshes {
		t.Errorf("refresh calls: %d → %d", refreshes, n)
	}
	// force_refresh asks Tesla for a new one.
	if tok3, res, body := a.token(ada.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK || tok3.AccessToken == tok.AccessToken {
		t.Errorf("force_refresh: %d %s", res.StatusCode, body)
	}

	// Errors.
	_, res, body = a.token(bob.ID, `{"scopes": ["vehicle_device_data"]}`)
	wantProblem(t, res, body, http.StatusForbidden, "scope-not-granted")
	for _, bad := range []string{`{"force_refresh": "yes"}`, `{`, `[]`, `{"forceRefresh": true}`, `{} {}`} {
		_, res, body = a.token(ada.ID, bad)
		wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
	}
	_, res, body = a.token("6f1c1a52-2f8e-4d5e-9a43-6c3b1a9f0000", "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	_, res, body = a.token("not-a-uuid", "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	res, body = a.do(http.MethodGet, "/api/v1/links/6f1c1a52-2f8e-4d5e-9a43-6c3b1a9f0000", "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	res, body = a.do(http.MethodPut, "/api/v1/links/"+ada.ID, "")
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "method-not-allowed") {
		t.Errorf("PUT: %d %s", res.StatusCode, body)
	}

	// Attribution: flushed in batches, shown per link and on the owner's page.
	if err := e.Usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, body = a.do(http.MethodGet, "/api/v1/links/"+ada.ID, "")
	var got linkOut
	if err := json.Unmarshal(body, &got); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET link: %d %s", res.StatusCode, body)
	}
	if got.ID != ada.ID || got.OwnerEmail != "ada@example.com" || got.OwnerSub != e.Sim.OwnerSub("ada@example.com") ||
		got.Status != "active" || got.LastUsedAt == nil || got.RefreshedAt == nil || got.RevokedAt != nil || got.Region != "na" {
		t.Errorf("link = %s", body)
	}
	usage, err := e.Store.LinkUsage(context.Background(), ada.ID)
	if err != nil || len(usage) != 1 || usage[0].ClientName != "dispatch" {
		t.Errorf("usage = %+v, %v", usage, err)
	}
	if !strings.Contains(e.Logs.String(), `"event":"token issued"`) || !strings.Contains(e.Logs.String(), `"api_client":"dispatch"`) {
		t.Error("no 'token issued' log line naming the client")
	}
	if leaks := e.Leaks(); len(leaks) > 0 {
		t.Errorf("secrets in logs: %v", leaks)
	}

	// Listing: filters and keyset pagination.
	var page struct {
		Links      []linkOut `json:"links"`
		NextCursor *string   `json:"next_cursor"`
	}
	seen := map[string]bool{}
	path := "/api/v1/links?limit=1"
	for range 5 {
		res, body = a.do(http.MethodGet, path, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", res.StatusCode, body)
		}
		page.NextCursor = nil
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Links {
			seen[l.ID] = true
			if strings.Contains(string(body), "token") {
				t.Errorf("listing mentions a token: %s", body)
			}
		}
		if page.NextCursor == nil {
			break
		}
		path = "/api/v1/links?limit=1&cursor=" + *page.NextCursor
	}
	if len(seen) != 2 || !seen[ada.ID] || !seen[bob.ID] {
		t.Errorf("paginated listing saw %v", seen)
	}
	_, body = a.do(http.MethodGet, "/api/v1/links?owner_sub="+e.Sim.OwnerSub("bob@example.com")+"&status=active", "")
	if json.Unmarshal(body, &page) != nil || len(page.Links) != 1 || page.Links[0].ID != bob.ID || page.NextCursor != nil {
		t.Errorf("filtered list: %s", body)
	}
	for _, q := range []string{"status=gone", "limit=0", "limit=201", "limit=x", "cursor=zzz"} {
		res, body = a.do(http.MethodGet, "/api/v1/links?"+q, "")
		wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
	}

	// The document itself.
	res, body = a.withKey("").do(http.MethodGet, "/api/openapi.yaml", "")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "openapi: 3.1") {
		t.Errorf("openapi.yaml: %d", res.StatusCode)
	}
}

func TestAPIDeleteLink(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "del@example.com")
	a := newAPI(t, e, newKey(t, e, "crm"))
	for i := range 2 { // idempotent
		res, body := a.do(http.MethodDelete, "/api/v1/links/"+l.ID, "")
		var got linkOut
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Status != "revoked" || got.RevokedAt == nil {
			t.Errorf("DELETE #%d: %d %s", i+1, res.StatusCode, body)
		}
	}
	_, res, body := a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusGone, "link-revoked")
	res, body = a.do(http.MethodDelete, "/api/v1/links/6f1c1a52-2f8e-4d5e-9a43-6c3b1a9f0000", "")
	wantProblem(t, res, body, http.StatusNotFound, "not-found")
	stored, err := e.Store.GetLink(context.Background(), l.ID)
	if err != nil || stored.RefreshTokenSealed != nil || stored.AccessTokenSealed != nil {
		t.Errorf("tokens not deleted: %v", err)
	}
	events, _ := e.Store.AuditForLink(context.Background(), l.ID)
	if !slices.ContainsFunc(events, func(ev db.AuditEvent) bool { return ev.Action == "link.revoked" && ev.Actor == "api:crm" }) {
		t.Errorf("audit = %+v", events)
	}
}

func TestAPIReauthRequired(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	if res, _ := b.Login("reauth@example.com", []string{"user_data"}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatal("login failed")
	}
	rows, _ := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub("reauth@example.com")})
	l := rows[0]
	a := newAPI(t, e, newKey(t, e, "ops"))
	e.Sim.Clock().Advance(9 * time.Hour)
	e.Sim.Inject(teslasim.FaultRefreshLoginRequired, teslasim.FaultOptions{Count: 1})
	_, res, body := a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusConflict, "reauth-required")
	// Kept, flagged, and no further call to Tesla.
	calls := e.Sim.Calls("token.refresh_token")
	_, res, body = a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusConflict, "reauth-required")
	if e.Sim.Calls("token.refresh_token") != calls {
		t.Error("Tesla was asked again for a needs_reauth link")
	}
	stored, err := e.Store.GetLink(context.Background(), l.ID)
	if err != nil || stored.Status != db.StatusNeedsReauth || stored.StatusReason == "" || stored.RefreshTokenSealed == nil {
		t.Fatalf("link after login_required: %+v %v", stored, err)
	}
	res, body = a.do(http.MethodGet, "/api/v1/links/"+l.ID, "")
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"needs_reauth"`) {
		t.Errorf("GET link: %s", body)
	}
	_, page := b.Get("/account")
	if !strings.Contains(page, `data-testid="reauth-banner"`) {
		t.Error("the owner's account page does not show that the link needs re-authorisation")
	}
}

func TestAPITeslaUnavailable(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "down@example.com")
	a := newAPI(t, e, newKey(t, e, "ops"))
	e.Sim.Clock().Advance(9 * time.Hour)
	for _, f := range []teslasim.Fault{teslasim.FaultHTTP503, teslasim.FaultHTTP429} {
		e.Sim.ResetCalls()
		e.Sim.Inject(f, teslasim.FaultOptions{Count: 100, RetryAfter: time.Second})
		_, res, body := a.token(l.ID, "")
		wantProblem(t, res, body, http.StatusServiceUnavailable, "tesla-unavailable")
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", f)
		}
		if n := e.Sim.Calls("token.refresh_token"); n < 2 || n > 5 {
			t.Errorf("%s: %d attempts, want bounded retries", f, n)
		}
		e.Sim.ClearFaults()
	}
	// Tesla is back: the link recovers and stays active.
	if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Errorf("after outage: %d %s", res.StatusCode, body)
	}
	// Tesla rejecting our client is an operator problem, not the owner's.
	e.Sim.Clock().Advance(9 * time.Hour)
	e.Sim.Inject(teslasim.FaultUnauthorizedClient, teslasim.FaultOptions{Count: 1})
	_, res, body := a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusBadGateway, "tesla-client-misconfigured")
	if stored, _ := e.Store.GetLink(context.Background(), l.ID); stored.Status != db.StatusActive {
		t.Errorf("status after unauthorized_client = %s", stored.Status)
	}
}

// Tesla applied the refresh but its answer never arrived: the call fails,
// the stored refresh token is the previous one, and the next call recovers
// through Tesla's 24-hour grace for the most recently used refresh token.
func TestAPIRefreshAnswerLost(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "lost@example.com")
	a := newAPI(t, e, newKey(t, e, "ops"))
	e.Sim.Clock().Advance(9 * time.Hour)
	e.Sim.Inject(teslasim.FaultDropAfterRefresh, teslasim.FaultOptions{Count: 10})
	_, res, body := a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusServiceUnavailable, "tesla-unavailable")
	e.Sim.ClearFaults()
	before := e.Sim.Calls("token.refresh_token")
	tok, res, body := a.token(l.ID, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("second call: %d %s", res.StatusCode, body)
	}
	if e.Sim.Calls("token.refresh_token") != before+1 {
		t.Errorf("refresh calls for the recovery: %d", e.Sim.Calls("token.refresh_token")-before)
	}
	stored, _ := e.Store.GetLink(context.Background(), l.ID)
	if stored.Status != db.StatusActive || !stored.AccessTokenExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("link after recovery: %s %v", stored.Status, stored.AccessTokenExpiresAt)
	}
	// And the stored (new) refresh token works next time.
	e.Sim.Clock().Advance(9 * time.Hour)
	if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Errorf("third call: %d %s", res.StatusCode, body)
	}
}

// 200 concurrent requests for one expired link over 3 instances: exactly
// one refresh at Tesla, and all get the same new token (see docs/security.md, "Refresh").
func TestAPIConcurrentRefreshOneCall(t *testing.T) {
	t.Parallel()
	e0 := testenv.New(t, testenv.Options{})
	envs := []*testenv.Env{e0,
		testenv.New(t, testenv.Options{DatabaseURL: e0.DBURL, Sim0: e0.Sim, TokenKeys: e0.KeySpec}),
		testenv.New(t, testenv.Options{DatabaseURL: e0.DBURL, Sim0: e0.Sim, TokenKeys: e0.KeySpec})}
	l := linkOwner(t, e0, "many@example.com")
	key := newKey(t, e0, "swarm")
	e0.Sim.Clock().Advance(9 * time.Hour)
	e0.Sim.ResetCalls()

	const n = 200
	apis := []*api{newAPI(t, envs[0], key), newAPI(t, envs[1], key), newAPI(t, envs[2], key)}
	tokens := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, res, body := apis[i%3].token(l.ID, "")
			if res.StatusCode != http.StatusOK {
				t.Errorf("request %d: %d %s", i, res.StatusCode, body)
			}
			tokens[i] = tok.AccessToken
		}()
	}
	close(start)
	wg.Wait()
	if c := e0.Sim.Calls("token.refresh_token"); c != 1 {
		t.Errorf("refresh calls at Tesla = %d, want 1", c)
	}
	distinct := map[string]bool{}
	for _, tok := range tokens {
		distinct[tok] = true
	}
	if len(distinct) != 1 || tokens[0] == "" {
		t.Errorf("%d distinct tokens among %d answers", len(distinct), n)
	}
}

// The database is unreachable: 503 with Retry-After, never a 500.
func TestAPIDatabaseDown(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "dbdown@example.com")
	key := newKey(t, e, "ops")
	// A second instance whose database does not answer (nothing listens on the port).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "postgres://teslalink@" + ln.Addr().String() + "/teslalink?sslmode=disable&connect_timeout=2"
	ln.Close()
	down := testenv.New(t, testenv.Options{Sim0: e.Sim, DatabaseURL: deadURL, TokenKeys: e.KeySpec})
	a := newAPI(t, down, key)
	_, res, body := a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusServiceUnavailable, "database-unavailable")
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	res, body = a.do(http.MethodGet, "/api/v1/links", "")
	wantProblem(t, res, body, http.StatusServiceUnavailable, "database-unavailable")
}

// waitCacheLive waits until each instance's token cache listens for changes.
func waitCacheLive(t *testing.T, envs ...*testenv.Env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, e := range envs {
		for !e.Cache.Live() {
			if time.Now().After(deadline) {
				t.Fatal("token cache never went live")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestTokenCacheFollowsOtherInstances: a refresh or revoke on one instance
// evicts the other instance's cached token at commit, so it never hands out
// an access token older than the latest refresh, nor one for a revoked link.
func TestTokenCacheFollowsOtherInstances(t *testing.T) {
	t.Parallel()
	e1 := testenv.New(t, testenv.Options{})
	e2 := testenv.New(t, testenv.Options{DatabaseURL: e1.DBURL, Sim0: e1.Sim, TokenKeys: e1.KeySpec})
	l := linkOwner(t, e1, "cache@example.com")
	key := newKey(t, e1, "svc")
	a1, a2 := newAPI(t, e1, key), newAPI(t, e2, key)
	waitCacheLive(t, e1, e2)
	first, _, _ := a2.token(l.ID, "")
	if again, _, _ := a2.token(l.ID, ""); again.AccessToken != first.AccessToken || e2.Cache.Len() != 1 {
		t.Fatal("second answer not from the cache")
	}
	fresh, res, body := a1.token(l.ID, `{"force_refresh": true}`)
	if res.StatusCode != http.StatusOK || fresh.AccessToken == first.AccessToken {
		t.Fatalf("forced refresh on instance 1: %d %s", res.StatusCode, body)
	}
	deadline := time.Now().Add(time.Second)
	for {
		got, _, _ := a2.token(l.ID, "")
		if got.AccessToken == fresh.AccessToken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance 2 kept handing out the token from before the refresh")
		}
		time.Sleep(time.Millisecond)
	}
	if res, body := a1.do(http.MethodDelete, "/api/v1/links/"+l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("delete: %d %s", res.StatusCode, body)
	}
	deadline = time.Now().Add(time.Second)
	for {
		_, res, _ := a2.token(l.ID, "")
		if res.StatusCode == http.StatusGone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance 2 still answers %d for a revoked link", res.StatusCode)
		}
		time.Sleep(time.Millisecond)
	}
}
