package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"teslalink/internal/pgcluster"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// TestReadyzFollowsTheDatabase stops PostgreSQL under a running server:
// /readyz turns 503, and 200 again once the database is back, no restart.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "teslalink-readyz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the server runs as the postgres user when we are root
	socket := filepath.Join(dir, "sock")
	ctx := context.Background()
	var cluster *pgcluster.Cluster
	opts := pgcluster.Options{DataDir: filepath.Join(dir, "data"), SocketDir: socket, Fast: true}
	cluster, err = pgcluster.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cluster.Stop() }()

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
	cfg := &Config{Addr: "127.0.0.1:0", PublicURL: pub, DatabaseURL: cluster.URL("postgres"), DBMaxConns: 4,
		TeslaClientID: sim.Config().ClientID, TeslaClientSecret: sim.Config().ClientSecret, TeslaDiscoveryURL: sim.DiscoveryURL(),
		TeslaIssuers: []string{sim.IDTokenIssuer()}, TokenKeys: kr, SessionKeys: [][]byte(nil),
		InsecureCookie: true, LogLevel: "info", LogFormat: "json", TeslaRegionURLs: map[string]string{}}
	cfg.SessionKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	runCtx, stop := context.WithCancel(ctx)
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(runCtx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("server ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	readyz := func() int {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for readyz() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never became %d", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(200)
	cluster.Stop()
	waitFor(503)
	if cluster, err = pgcluster.Start(ctx, opts); err != nil {
		t.Fatal(err)
	}
	waitFor(200)

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("graceful shutdown hung")
	}
	if readyz() != 0 {
		t.Fatal("server still answering after shutdown")
	}
}
