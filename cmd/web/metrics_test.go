package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// TestMetricsListener: with METRICS_ADDR, /metrics is served there and only
// there: the public port answers 404 for it.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	sim, err := teslasim.New(teslasim.Config{RedirectURIs: []string{"http://127.0.0.1:1/auth/tesla/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	keys, _ := seal.GenerateKey("k1")
	kr, _ := seal.ParseKeys(keys)
	pub, _ := url.Parse("http://127.0.0.1:1")
	cfg := &Config{Addr: "127.0.0.1:0", PublicURL: pub, DatabaseURL: pgtest.URL(t), DBMaxConns: 4,
		TeslaClientID: sim.Config().ClientID, TeslaClientSecret: sim.Config().ClientSecret, TeslaDiscoveryURL: sim.DiscoveryURL(),
		TeslaIssuers: []string{sim.IDTokenIssuer()}, TokenKeys: kr, InsecureCookie: true, LogLevel: "info", LogFormat: "json",
		TeslaRegionURLs: map[string]string{}, SessionKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		TokenCacheBytes: 1 << 20, MetricsAddr: "127.0.0.1:0"}
	var logs syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, nil)), func(a string) { addrc <- a })
	}()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("server did not stop")
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("server ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	m := regexp.MustCompile(`"url":"(http://127\.0\.0\.1:\d+/metrics)"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", logs.String())
	}
	get := func(u string) (int, string) {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get(m[1])
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(body, "teslalink_links{") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // the first count runs at start-up, in the background
		code, body = get(m[1])
	}
	for _, want := range []string{"teslalink_db_pool_max_conns 4", "teslalink_token_cache_hits_total", "go_goroutines",
		`teslalink_links{status="active"} 0`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics listener: %d, lacks %q", code, want)
		}
	}
	if code, _ := get("http://" + addr + "/metrics"); code != http.StatusNotFound {
		t.Errorf("public port answers /metrics with %d", code)
	}
}

// TestMetricsNeverOnThePublicPort: METRICS_ADDR on ADDR's port is refused.
func TestMetricsNeverOnThePublicPort(t *testing.T) {
	cfg := &Config{Addr: "0.0.0.0:8080", MetricsAddr: "127.0.0.1:8080"}
	if _, err := startMetrics(cfg, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Fatalf("err = %v", err)
	}
}
