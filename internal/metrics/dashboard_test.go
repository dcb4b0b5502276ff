package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"teslalink/internal/ratelimit"
)

// TestDashboardShowsEveryMetric: deploy/grafana-dashboard.json is valid
// JSON and queries every teslalink_ metric this package exports.
func TestDashboardShowsEveryMetric(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs strings.Builder
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}

	// Every family: the registry's (with one sample each) and the pool's.
	m := New(nil, &fakeCache{}, nil)
	m.TokenRequest("c", OutcomeOK)
	m.Refresh("ok", time.Millisecond)
	m.WebhookDelivery(WebhookOK)
	m.links.WithLabelValues("active").Set(1)
	m.WatchTokenBudget(ratelimit.NewBucket(1, 1, nil))
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	ch := make(chan *prometheus.Desc, 16)
	poolCollector{}.Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		names = append(names, fq.FindStringSubmatch(d.String())[1])
	}
	checked := 0
	for _, n := range names {
		if !strings.HasPrefix(n, "teslalink_") {
			continue
		}
		checked++
		if !strings.Contains(exprs.String(), n) {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
	if checked < 12 {
		t.Fatalf("only %d teslalink_ metrics found", checked)
	}
	for _, runtime := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(exprs.String(), runtime) {
			t.Errorf("the dashboard does not show %s", runtime)
		}
	}
}
