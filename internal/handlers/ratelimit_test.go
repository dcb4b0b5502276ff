package handlers_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"teslalink/internal/ratelimit"
	"teslalink/internal/testenv"
)

// One client address gets ConnectPerMinute requests to /connect and the
// callback, then a friendly 429 page with Retry-After; another address is
// not affected.
func TestConnectRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{ConnectPerMinute: 5, TrustProxy: true})
	b := e.Browser()
	get := func(path, ip string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("X-Forwarded-For", ip)
		return b.Do(req)
	}
	for i := range 4 {
		if res, _ := get("/connect", "192.0.2.7"); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d, want 200 within the limit", i+1, res.StatusCode)
		}
	}
	if res, _ := get("/auth/tesla/callback?state=x&code=y", "192.0.2.7"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("5th request (callback without login): %d, want its own 400 within the limit", res.StatusCode)
	}
	for _, path := range []string{"/connect", "/auth/tesla/callback?state=x&code=y"} {
		res, body := get(path, "192.0.2.7")
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s over the limit: %d, want 429", path, res.StatusCode)
		}
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("%s: Retry-After %q, want 1-60 seconds", path, res.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, "Too many attempts") || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: 429 is not the friendly page: %.300s", path, body)
		}
	}
	if res, _ := get("/connect", "198.51.100.9"); res.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d, want 200", res.StatusCode)
	}
	// The landing page is not limited.
	if res, _ := get("/", "192.0.2.7"); res.StatusCode != http.StatusOK {
		t.Fatalf("landing page: %d, want 200", res.StatusCode)
	}
	// A minute later the address may try again.
	e.Sim.Clock().Advance(time.Minute)
	if res, _ := get("/connect", "192.0.2.7"); res.StatusCode != http.StatusOK {
		t.Fatalf("after a minute: %d, want 200", res.StatusCode)
	}
}

// Each API client gets APIPerSecond requests, then a 429 problem with
// Retry-After; other clients are not affected.
func TestAPIRateLimitPerClient(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{APIPerSecond: 3})
	l := linkOwner(t, e, "limited@example.com")
	a := newAPI(t, e, newKey(t, e, "busy"))
	other := a.withKey(newKey(t, e, "calm"))
	for i := range 3 {
		if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, res.StatusCode, body)
		}
	}
	res, body := a.do(http.MethodGet, "/api/v1/links", "")
	wantProblem(t, res, body, http.StatusTooManyRequests, "rate-limited")
	if res.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", res.Header.Get("Retry-After"))
	}
	_, res, body = a.token(l.ID, "")
	wantProblem(t, res, body, http.StatusTooManyRequests, "rate-limited")
	if _, res, body := other.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("another API client: %d %s", res.StatusCode, body)
	}
	e.Sim.Clock().Advance(time.Second)
	if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("a second later: %d %s", res.StatusCode, body)
	}
}

// Calls to Tesla's token endpoint stay within the budget: beyond it, requests
// that need Tesla get 503 + Retry-After at once, while valid tokens are still
// served, and Tesla never sees more than the budget.
func TestTeslaTokenBudget(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := testenv.New(t, testenv.Options{TokenBudget: ratelimit.NewBucket(1, 2, clock)})
	l := linkOwner(t, e, "budget@example.com") // the code exchange: 1 of 2
	a := newAPI(t, e, newKey(t, e, "backend"))
	before := e.Sim.Calls("token")
	if _, res, body := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK {
		t.Fatalf("forced refresh within the budget: %d %s", res.StatusCode, body)
	}
	var codes []int
	for range 5 {
		_, res, body := a.token(l.ID, `{"force_refresh": true}`)
		codes = append(codes, res.StatusCode)
		if res.StatusCode == http.StatusServiceUnavailable {
			wantProblem(t, res, body, http.StatusServiceUnavailable, "tesla-unavailable")
			if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After %q, want ≥ 1", res.Header.Get("Retry-After"))
			}
		}
	}
	for _, c := range codes {
		if c == http.StatusOK {
			// A forced refresh may be answered from the cooldown, never from Tesla.
			continue
		}
		if c != http.StatusServiceUnavailable {
			t.Fatalf("forced refreshes beyond the budget: %v, want 503 (or the last refresh's token)", codes)
		}
	}
	if n := e.Sim.Calls("token") - before; n != 1 {
		t.Fatalf("Tesla saw %d token calls, want 1 (the budget had one left)", n)
	}
	// A valid token needs no call to Tesla: still served.
	if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("valid token while the budget is spent: %d %s", res.StatusCode, body)
	}
	// The budget refills.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	e.Sim.Clock().Advance(time.Minute) // past any forced-refresh cooldown
	if _, res, body := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK {
		t.Fatalf("after a second: %d %s", res.StatusCode, body)
	}
	if n := e.Sim.Calls("token") - before; n != 2 {
		t.Fatalf("Tesla saw %d token calls, want 2", n)
	}
}
