package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/pgcluster"
	"teslalink/internal/teslasim"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

var keyRe = regexp.MustCompile(`tlk_[A-Za-z0-9_-]{43}`)

// TestAPIClientCommands creates, lists and revokes API clients against a throwaway PostgreSQL.
func TestAPIClientCommands(t *testing.T) {
	dir, err := os.MkdirTemp("", "teslalink-apiclient-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the server runs as the postgres user when we are root
	cluster, err := pgcluster.Start(context.Background(), pgcluster.Options{DataDir: filepath.Join(dir, "data"),
		SocketDir: filepath.Join(dir, "sock"), Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop() })
	t.Setenv("DATABASE_URL", cluster.URL("postgres"))

	code, out, errs := runCmd("apiclient", "create", "billing", "--scopes", "links:read,tokens:issue")
	if code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	key := keyRe.FindString(out)
	if key == "" || !strings.Contains(out, "cannot be shown again") {
		t.Fatalf("create output: %s", out)
	}
	store, err := db.Open(context.Background(), cluster.URL("postgres"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := store.Authenticate(context.Background(), apikey.Hash(key))
	if err != nil || c.Name != "billing" || !slices.Equal(c.Scopes, []string{"links:read", "tokens:issue"}) {
		t.Fatalf("stored client: %+v %v", c, err)
	}
	if code, _, errs = runCmd("apiclient", "create", "billing"); code != 1 || !strings.Contains(errs, "already exists") ||
		!strings.Contains(errs, "web apiclient rotate billing") {
		t.Errorf("duplicate: %d %s", code, errs)
	}
	if code, _, errs = runCmd("apiclient", "create", "x", "--scopes", "links:everything"); code != exitConfig {
		t.Errorf("bad scope: %d %s", code, errs)
	}
	if code, _, _ = runCmd("apiclient", "create"); code != exitConfig {
		t.Errorf("no name: %d", code)
	}
	if code, out, _ = runCmd("apiclient", "create", "--scopes", "links:delete", "crm"); code != 0 {
		t.Errorf("flags before name: %d %s", code, out)
	}

	// --display-name is what owners see on a link session's page.
	if code, out, _ = runCmd("apiclient", "create", "acme", "--scopes", "links:create", "--display-name", "Acme Charging"); code != 0 {
		t.Fatalf("create with a display name: %d %s", code, out)
	}
	acme, err := store.Authenticate(context.Background(), apikey.Hash(keyRe.FindString(out)))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := store.CreateLinkSession(context.Background(), db.NewLinkSession{IDHash: []byte("h"), APIClientID: acme.ID,
		ExternalRef: "u", ReturnURL: "https://app.example.com/", Scopes: []string{"user_data"}, CreatedAt: time.Now(),
		ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil || ls.APIClientDisplay != "Acme Charging" {
		t.Errorf("display name owners see: %+v %v", ls, err)
	}
	if code, _, _ = runCmd("apiclient", "create", "ctl", "--display-name", "bad\x01name"); code != exitConfig {
		t.Errorf("control character in --display-name: %d", code)
	}

	code, out, _ = runCmd("apiclient", "list")
	if code != 0 || !strings.Contains(out, "billing") || !strings.Contains(out, key[:12]) || !strings.Contains(out, "crm") ||
		strings.Contains(out, key) {
		t.Errorf("list: %d\n%s", code, out)
	}
	if code, out, _ = runCmd("apiclient", "revoke", "billing"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %s", code, out)
	}
	if _, err := store.Authenticate(context.Background(), apikey.Hash(key)); err == nil {
		t.Error("revoked key still authenticates")
	}
	if code, _, _ = runCmd("apiclient", "revoke", "billing"); code != 0 {
		t.Errorf("revoke again: %d", code)
	}
	if code, _, errs = runCmd("apiclient", "revoke", "nobody"); code != 1 || !strings.Contains(errs, "no API client") {
		t.Errorf("revoke unknown: %d %s", code, errs)
	}

	// A revoked client's name can be used again.
	code, out, errs = runCmd("apiclient", "create", "billing")
	if code != 0 {
		t.Fatalf("reuse a revoked name: %d %s %s", code, out, errs)
	}
	key2 := keyRe.FindString(out)
	// Rotation: a new key, the previous one works during the overlap.
	code, out, errs = runCmd("apiclient", "rotate", "billing", "--overlap", "2h")
	key3 := keyRe.FindString(out)
	if code != 0 || key3 == "" || key3 == key2 || !strings.Contains(out, "keeps working until") {
		t.Fatalf("rotate: %d %s %s", code, out, errs)
	}
	for _, k := range []string{key2, key3} {
		if c, err := store.Authenticate(context.Background(), apikey.Hash(k)); err != nil || c.Name != "billing" {
			t.Errorf("after rotate, key %s…: %+v %v", k[:12], c, err)
		}
	}
	if err := store.RecordKeyUse(context.Background(), [][]byte{apikey.Hash(key2)}, []time.Time{time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("apiclient", "list")
	if code != 0 || !strings.Contains(out, "LAST USED") || !strings.Contains(out, "old key") ||
		!strings.Contains(out, "2026-11-30T12:00:00Z") || !strings.Contains(out, key2[:12]) || strings.Contains(out, key3) {
		t.Errorf("list after rotate:\n%s", out)
	}
	if code, out, _ = runCmd("apiclient", "rotate", "billing", "--overlap", "0s"); code != 0 || !strings.Contains(out, "refused from now on") {
		t.Errorf("rotate without overlap: %d %s", code, out)
	}
	if _, err := store.Authenticate(context.Background(), apikey.Hash(key2)); err == nil {
		t.Error("a key two rotations old still authenticates")
	}
	if code, _, errs = runCmd("apiclient", "rotate", "nobody"); code != 1 || !strings.Contains(errs, "no active API client") {
		t.Errorf("rotate unknown: %d %s", code, errs)
	}
	if code, _, _ = runCmd("apiclient", "rotate", "billing", "--overlap", "forever"); code != exitConfig {
		t.Errorf("bad overlap: %d", code)
	}
}

// TestTeslaRegister registers a domain with the simulator, twice.
func TestTeslaRegister(t *testing.T) {
	sim, err := teslasim.New(teslasim.Config{RedirectURIs: []string{"https://link.example.com/auth/tesla/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	for k, v := range map[string]string{"TESLA_CLIENT_ID": sim.Config().ClientID, "TESLA_CLIENT_SECRET": sim.Config().ClientSecret,
		"TESLA_DISCOVERY_URL": sim.DiscoveryURL(), "TESLA_TOKEN_URL": sim.TokenURL(), "TESLA_ISSUERS": sim.IDTokenIssuer(),
		"TESLA_FLEET_API_NA": sim.RegionBaseURL("na"), "TESLA_FLEET_API_EU": sim.RegionBaseURL("eu"),
		"TESLA_FLEET_API_CN": sim.RegionBaseURL("cn")} {
		t.Setenv(k, v)
	}
	for i := range 2 {
		code, out, errs := runCmd("tesla", "register", "--domain", "link.example.com", "--region", "eu")
		if code != 0 || !strings.Contains(out, "Registered: domain link.example.com, region eu") {
			t.Fatalf("register #%d: %d %s %s", i+1, code, out, errs)
		}
	}
	if d := sim.RegisteredDomains("eu"); !slices.Equal(d, []string{"link.example.com"}) {
		t.Errorf("registered = %v", d)
	}
	if code, _, _ := runCmd("tesla", "register"); code != exitConfig {
		t.Errorf("no domain: %d", code)
	}
	if code, _, _ := runCmd("tesla", "register", "--domain", "link.example.com", "--region", "mars"); code != exitConfig {
		t.Errorf("bad region: %d", code)
	}
	if code, _, _ := runCmd("tesla", "register", "--domain", "https://evil/"); code != exitConfig {
		t.Errorf("bad domain: %d", code)
	}
}
