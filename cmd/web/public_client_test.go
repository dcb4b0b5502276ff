package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// publicSim starts a simulator that registered its client as a public client.
func publicSim(t *testing.T, redirect string) *teslasim.Sim {
	t.Helper()
	sim, err := teslasim.New(teslasim.Config{PublicClient: true, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func setSimEnv(t *testing.T, sim *teslasim.Sim) {
	t.Helper()
	for k, v := range map[string]string{"TESLA_CLIENT_ID": sim.Config().ClientID, "TESLA_CLIENT_SECRET": "",
		"TESLA_DISCOVERY_URL": sim.DiscoveryURL(), "TESLA_TOKEN_URL": sim.TokenURL(), "TESLA_ISSUERS": sim.IDTokenIssuer(),
		"TESLA_FLEET_API_NA": sim.RegionBaseURL("na"), "TESLA_FLEET_API_EU": sim.RegionBaseURL("eu"),
		"TESLA_FLEET_API_CN": sim.RegionBaseURL("cn"), "TESLA_AUDIENCE": sim.RegionBaseURL("na")} {
		t.Setenv(k, v)
	}
}

// TestServeAsPublicClient: `web serve` starts without TESLA_CLIENT_SECRET
// and says it is a public client.
func TestServeAsPublicClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sim := publicSim(t, "http://"+addr+"/auth/tesla/callback")
	setSimEnv(t, sim)
	tok, _ := seal.GenerateKey("k1")
	t.Setenv("PUBLIC_URL", "http://"+addr)
	t.Setenv("ADDR", addr)
	t.Setenv("DATABASE_URL", pgtest.URL(t))
	t.Setenv("TOKEN_ENCRYPTION_KEYS", tok)
	t.Setenv("SESSION_KEYS", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, nil, &out, &out) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "acting as a public client") {
		t.Errorf("no public-client log line:\n%s", out.String())
	}
}

// TestTeslaRegisterNeedsASecret: registration explains why a public client
// cannot register, and sends nothing to Tesla.
func TestTeslaRegisterNeedsASecret(t *testing.T) {
	sim := publicSim(t, "https://link.example.com/auth/tesla/callback")
	setSimEnv(t, sim)
	code, out, errs := runCmd("tesla", "register", "--domain", "link.example.com")
	if code != exitConfig || !strings.Contains(errs, "TESLA_CLIENT_SECRET") || !strings.Contains(errs, "public client") {
		t.Fatalf("register without a secret: %d %q %q", code, out, errs)
	}
	if n := sim.Calls("token.client_credentials"); n != 0 {
		t.Fatalf("partner token requests = %d", n)
	}
}

// TestTeslaSimPublicClientFlag: `web tesla-sim --public-client` prints an
// empty secret for teslalink to use.
func TestTeslaSimPublicClientFlag(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmdTeslaSim(ctx, []string{"--public-client", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Point teslalink at it") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "public client") || strings.Contains(s, teslasim.DefaultClientSecret) {
		t.Fatalf("output:\n%s", s)
	}
}
