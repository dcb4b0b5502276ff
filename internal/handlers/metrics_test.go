package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"teslalink/internal/ratelimit"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// scrape reads the instance's metrics into series → value.
func scrape(t *testing.T, e *testenv.Env) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	e.App.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d", rec.Code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMove: the token requests, the cache, refreshes at Tesla, the
// links gauge and the pool all show up and move with what happens.
func TestMetricsMove(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{TokenBudget: ratelimit.NewBucket(50, 50, nil)})
	l := linkOwner(t, e, "metrics@example.com")
	a := newAPI(t, e, newKey(t, e, "crm"))
	waitCacheLive(t, e)
	before := scrape(t, e)

	for range 3 {
		if _, res, body := a.token(l.ID, ""); res.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %s", res.StatusCode, body)
		}
	}
	_, res, _ := a.token("6f1c1a52-2f8e-4d5e-9a43-6c3b1a9f0000", "")
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown link: %d", res.StatusCode)
	}
	if _, res, _ := a.withKey("tlk_"+strings.Repeat("A", 43)).token(l.ID, ""); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", res.StatusCode)
	}
	// A refresh at Tesla that works, and one Tesla refuses.
	if _, res, body := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK {
		t.Fatalf("forced refresh: %d %s", res.StatusCode, body)
	}
	e.Sim.Inject(teslasim.FaultRefreshLoginRequired, teslasim.FaultOptions{Count: 1})
	if _, res, _ := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusConflict {
		t.Fatalf("refused refresh: %d", res.StatusCode)
	}
	if err := e.App.Metrics.UpdateLinkCounts(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, e)

	moved := func(series string, want float64) {
		t.Helper()
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	moved(`teslalink_token_requests_total{client="crm",outcome="ok"}`, 4)
	moved(`teslalink_token_requests_total{client="crm",outcome="not-found"}`, 1)
	moved(`teslalink_token_requests_total{client="unknown",outcome="unauthenticated"}`, 1)
	moved(`teslalink_token_requests_total{client="crm",outcome="reauth-required"}`, 1)
	moved(`teslalink_tesla_refresh_duration_seconds_count{result="ok"}`, 1)
	moved(`teslalink_tesla_refresh_duration_seconds_count{result="reauth"}`, 1)
	moved(`teslalink_tesla_token_budget_calls_total{result="allowed"}`, 2)
	if after["teslalink_tesla_token_budget_rate"] != 50 {
		t.Errorf("budget rate = %v", after["teslalink_tesla_token_budget_rate"])
	}
	if hits := after["teslalink_token_cache_hits_total"] - before["teslalink_token_cache_hits_total"]; hits < 2 {
		t.Errorf("cache hits moved by %v, want at least 2 (repeated requests for one link)", hits)
	}
	if after["teslalink_token_cache_misses_total"] <= before["teslalink_token_cache_misses_total"] {
		t.Error("cache misses did not move")
	}
	if after[`teslalink_links{status="needs_reauth"}`] != 1 || after[`teslalink_links{status="active"}`] != 0 {
		t.Errorf("links gauge: %v active, %v needs_reauth", after[`teslalink_links{status="active"}`],
			after[`teslalink_links{status="needs_reauth"}`])
	}
	if after["teslalink_db_pool_max_conns"] <= 0 || after["teslalink_db_pool_acquires_total"] <= before["teslalink_db_pool_acquires_total"] {
		t.Errorf("pool stats: max %v, acquires %v → %v", after["teslalink_db_pool_max_conns"],
			before["teslalink_db_pool_acquires_total"], after["teslalink_db_pool_acquires_total"])
	}
	if after["go_goroutines"] <= 0 || after["process_resident_memory_bytes"] <= 0 {
		t.Error("no Go runtime or process metrics")
	}
}
