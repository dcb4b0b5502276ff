package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// TestServeSurvivesTeslaOutageAtStartup: Tesla is down when serve starts.
// The server still comes up, /readyz says so, pages say Tesla is
// unreachable, and everything works once Tesla is back, without a restart.
func TestServeSurvivesTeslaOutageAtStartup(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	teslaAddr := ln.Addr().String()
	ln.Close() // nothing listens there yet: Tesla is down

	keys, _ := seal.GenerateKey("k1")
	kr, _ := seal.ParseKeys(keys)
	pub, _ := url.Parse("http://127.0.0.1:1")
	base := "http://" + teslaAddr
	cfg := &Config{Addr: "127.0.0.1:0", PublicURL: pub, DatabaseURL: pgtest.URL(t), DBMaxConns: 4,
		TeslaClientID: teslasim.DefaultClientID, TeslaClientSecret: teslasim.DefaultClientSecret,
		TeslaDiscoveryURL: base + teslasim.PathDiscovery, TeslaIssuers: []string{teslasim.DefaultIssuer},
		TeslaAudience: base + "/fleet/na", TokenKeys: kr, SessionKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		InsecureCookie: true, LogLevel: "info", LogFormat: "json", TeslaRegionURLs: map[string]string{"na": base + "/fleet/na"},
		OfferedScopes: allOptionalScopes}
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
		t.Fatalf("serve did not survive Tesla being down: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	get := func(path string) (int, string) {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get("/readyz")
	var ready map[string]string
	json.Unmarshal([]byte(body), &ready)
	if code != 200 || ready["tesla"] != "unreachable" || ready["database"] != "ok" {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, `data-testid="tesla-unreachable"`) {
		t.Fatalf("landing page does not say Tesla is unreachable: %d", code)
	}
	res, err := http.PostForm("http://"+addr+"/connect", url.Values{"scope": {"user_data"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "Tesla can") {
		t.Fatalf("POST /connect while Tesla is down: %d", res.StatusCode)
	}

	// Tesla comes back on the same address.
	sim, err := teslasim.New(teslasim.Config{RedirectURIs: []string{"http://127.0.0.1:1/auth/tesla/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(teslaAddr); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, body := get("/readyz")
		if strings.Contains(body, `"tesla":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("discovery never recovered")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body := get("/"); code != 200 || strings.Contains(body, `data-testid="tesla-unreachable"`) {
		t.Fatalf("banner still shown after recovery: %d", code)
	}
	stop()
	<-done
}
