package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// TestShutdownDrain: after SIGTERM (ctx cancelled) with SHUTDOWN_DRAIN set,
// /readyz answers 503 "draining" while other requests are still served;
// then the server stops.
func TestShutdownDrain(t *testing.T) {
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
		ShutdownDrain: 2 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("server ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	get := func(path string) (int, map[string]string) {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, nil
		}
		defer res.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d", code)
	}
	stopped := time.Now()
	stop()
	time.Sleep(200 * time.Millisecond)
	if code, m := get("/readyz"); code != http.StatusServiceUnavailable || m["status"] != "draining" {
		t.Fatalf("/readyz while draining: %d %v", code, m)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d (requests must still be served)", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("did not stop after draining")
	}
	if d := time.Since(stopped); d < 2*time.Second {
		t.Fatalf("stopped after %v, before the drain ended", d)
	}
	if code, _ := get("/healthz"); code != 0 {
		t.Fatal("still serving after shutdown")
	}
}
