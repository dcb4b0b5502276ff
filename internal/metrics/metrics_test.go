package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"teslalink/internal/ratelimit"
)

type fakeCache struct{ hits, misses uint64 }

func (f *fakeCache) Stats() (uint64, uint64) { return f.hits, f.misses }

// TestTokenRequestCostsNoAllocation: the token endpoint's counter is
// resolved once per client and outcome; counting again allocates nothing.
func TestTokenRequestCostsNoAllocation(t *testing.T) {
	m := New(nil, nil, nil)
	m.TokenRequest("billing", OutcomeOK)
	m.TokenRequest("billing", "reauth-required")
	if n := testing.AllocsPerRun(1000, func() { m.TokenRequest("billing", OutcomeOK) }); n != 0 {
		t.Errorf("ok: %v allocations per request", n)
	}
	if n := testing.AllocsPerRun(1000, func() { m.TokenRequest("billing", "reauth-required") }); n != 0 {
		t.Errorf("failure: %v allocations per request", n)
	}
}

// TestSeries: each series shows up in the scrape with its value.
func TestSeries(t *testing.T) {
	c := &fakeCache{hits: 7, misses: 2}
	m := New(nil, c, nil)
	m.TokenRequest("billing", OutcomeOK)
	m.TokenRequest("billing", OutcomeOK)
	m.TokenRequest("", "unauthenticated")
	m.Refresh("ok", 300*time.Millisecond)
	m.Refresh("transient", 3*time.Second)
	m.WebhookDelivery(WebhookFailed)
	m.WebhookDelivery(WebhookFailed)
	m.WebhookDelivery(WebhookOK)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`teslalink_token_requests_total{client="billing",outcome="ok"} 2`,
		`teslalink_token_requests_total{client="unknown",outcome="unauthenticated"} 1`,
		`teslalink_token_cache_hits_total 7`,
		`teslalink_token_cache_misses_total 2`,
		`teslalink_tesla_refresh_duration_seconds_count{result="ok"} 1`,
		`teslalink_tesla_refresh_duration_seconds_bucket{result="transient",le="5"} 1`,
		`teslalink_tesla_refresh_duration_seconds_bucket{result="transient",le="2"} 0`,
		`teslalink_webhook_deliveries_total{result="failed"} 2`,
		`teslalink_webhook_deliveries_total{result="ok"} 1`,
		"teslalink_webhook_queue_depth 0",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// BenchmarkTokenRequest measures the hot path's counting.
func BenchmarkTokenRequest(b *testing.B) {
	m := New(nil, nil, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.TokenRequest("billing", OutcomeOK)
		}
	})
}

// TestTokenBudgetSeries: the budget's allowed and refused calls, its rate
// and what is available now.
func TestTokenBudgetSeries(t *testing.T) {
	now := time.Unix(1000, 0)
	b := ratelimit.NewBucket(2, 2, func() time.Time { return now })
	m := New(nil, nil, nil)
	m.WatchTokenBudget(b)
	m.WatchTokenBudget(nil) // no budget: nothing more
	for range 3 {
		b.Allow()
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`teslalink_tesla_token_budget_calls_total{result="allowed"} 2`,
		`teslalink_tesla_token_budget_calls_total{result="refused"} 1`,
		`teslalink_tesla_token_budget_rate 2`,
		`teslalink_tesla_token_budget_available 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}
