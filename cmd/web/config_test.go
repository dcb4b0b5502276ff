package main

import (
	"bytes"
	"strings"
	"testing"

	"teslalink/internal/seal"
)

func mapEnv(m map[string]string) env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func validEnv(t *testing.T) map[string]string {
	t.Helper()
	tok, _ := seal.GenerateKey("k1")
	return map[string]string{
		"PUBLIC_URL":            "https://link.example.com",
		"DATABASE_URL":          "postgres://u:hunter2@db.example.com:5432/teslalink",
		"TESLA_CLIENT_ID":       "client",
		"TESLA_CLIENT_SECRET":   "s3cret-value",
		"TOKEN_ENCRYPTION_KEYS": tok,
		"SESSION_KEYS":          "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
}

func TestLoadConfigValid(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(mapEnv(validEnv(t)), "PUBLIC_URL", "DATABASE_URL")
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL.String() != "https://link.example.com" || c.TokenKeys.PrimaryID() != "k1" || len(c.SessionKeys) != 1 {
		t.Fatalf("%+v", c)
	}
	if c.Addr != "127.0.0.1:8080" || len(c.OfferedScopes) != 7 || c.ActivityRetention.String() != "13mo" {
		t.Fatalf("defaults: %s %v %s", c.Addr, c.OfferedScopes, c.ActivityRetention)
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		set, value, wantVar string
	}{
		{"DATABASE_URL", "postgres://u:hunter2@db:notaport/x", "DATABASE_URL"},
		{"TOKEN_ENCRYPTION_KEYS", "k1:c2hvcnQ=", "TOKEN_ENCRYPTION_KEYS"},
		{"TOKEN_ENCRYPTION_KEYS", "k1", "TOKEN_ENCRYPTION_KEYS"},
		{"SESSION_KEYS", "c2hvcnRrZXk=", "SESSION_KEYS"},
		{"SESSION_KEYS", "%%%notbase64", "SESSION_KEYS"},
		{"PUBLIC_URL", "link.example.com", "PUBLIC_URL"},
		{"PUBLIC_URL", "/relative", "PUBLIC_URL"},
		{"TESLA_DISCOVERY_URL", "not a url", "TESLA_DISCOVERY_URL"},
		{"SESSION_IDLE_TIMEOUT", "soon", "SESSION_IDLE_TIMEOUT"},
		{"SCOPES_OFFERED", "user_data,steal_car", "SCOPES_OFFERED"},
		{"DB_MAX_CONNS", "-3", "DB_MAX_CONNS"},
		{"LINK_RETURN_URLS", "https://user@app.example.com/x", "LINK_RETURN_URLS"},
		{"LINK_RETURN_URLS", "app.example.com/x", "LINK_RETURN_URLS"},
		{"LINK_RETURN_URLS", "https://app.example.com/a/../b", "LINK_RETURN_URLS"},
		{"LINK_SESSION_TTL", "0s", "LINK_SESSION_TTL"},
		{"ACTIVITY_RETENTION", "13 months", "ACTIVITY_RETENTION"},
		{"MEMORY_LIMIT_MB", "lots", "MEMORY_LIMIT_MB"},
		{"MEMORY_LIMIT_MB", "60", "MEMORY_LIMIT_MB"}, // under twice the default 32 MB cache plus 16
	}
	for _, tc := range cases {
		m := validEnv(t)
		m[tc.set] = tc.value
		_, err := loadConfig(mapEnv(m))
		if err == nil {
			t.Errorf("%s=%q accepted", tc.set, tc.value)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tc.wantVar+": ") || strings.Contains(msg, "\n") {
			t.Errorf("%s=%q: message %q should be one line starting with the variable", tc.set, tc.value, msg)
		}
		for _, secret := range []string{"hunter2", "c2hvcnQ", "c2hvcnRrZXk", m["TOKEN_ENCRYPTION_KEYS"]} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: message leaks a secret: %q", tc.set, msg)
			}
		}
	}
	if _, err := loadConfig(mapEnv(map[string]string{}), "DATABASE_URL"); err == nil || err.Error() != "DATABASE_URL: is required" {
		t.Errorf("missing required: %v", err)
	}
}

// TestMemoryLimitFollowsTheCache: the default limit fits the default
// cache; a larger cache needs a larger limit, and 0 sets none.
func TestMemoryLimitFollowsTheCache(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapEnv(validEnv(t)))
	if err != nil || cfg.MemoryLimit != 80<<20 || cfg.TokenCacheBytes != 32<<20 {
		t.Fatalf("defaults: %v, limit %d, cache %d", err, cfg.MemoryLimit, cfg.TokenCacheBytes)
	}
	m := validEnv(t)
	m["TOKEN_CACHE_MB"] = "128"
	if _, err := loadConfig(mapEnv(m)); err == nil || !strings.Contains(err.Error(), "MEMORY_LIMIT_MB: must be at least twice TOKEN_CACHE_MB plus 16 (the service itself), so at least 272") {
		t.Fatalf("a 128 MB cache under an 80 MB limit: %v", err)
	}
	m["MEMORY_LIMIT_MB"] = "300"
	if cfg, err := loadConfig(mapEnv(m)); err != nil || cfg.MemoryLimit != 300<<20 {
		t.Fatalf("300 MB limit: %v", err)
	}
	m["MEMORY_LIMIT_MB"] = "0"
	if cfg, err := loadConfig(mapEnv(m)); err != nil || cfg.MemoryLimit != 0 {
		t.Fatalf("no limit: %v", err)
	}
}

func TestServeBadConfigExitsTwoWithOneLine(t *testing.T) {
	for k, v := range validEnv(t) {
		t.Setenv(k, v)
	}
	t.Setenv("TOKEN_ENCRYPTION_KEYS", "k1:dG9vc2hvcnQ=")
	var out, errOut bytes.Buffer
	code := run([]string{"serve"}, &out, &errOut)
	if code != exitConfig {
		t.Fatalf("exit %d, want %d", code, exitConfig)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "TOKEN_ENCRYPTION_KEYS") || strings.Contains(lines[0], "dG9vc2hvcnQ") {
		t.Fatalf("stderr = %q", errOut.String())
	}
	t.Setenv("PUBLIC_URL", "http://link.example.com")
	t.Setenv("TOKEN_ENCRYPTION_KEYS", validEnv(t)["TOKEN_ENCRYPTION_KEYS"])
	errOut.Reset()
	if code := run([]string{"serve"}, &out, &errOut); code != exitConfig || !strings.Contains(errOut.String(), "PUBLIC_URL: must use https") {
		t.Fatalf("plain http public URL: exit %d, %q", code, errOut.String())
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	in := "failed to connect to `user=u database=x`:\n\t127.0.0.1:1: refused\n\t[::1]:1: refused"
	if got, want := oneLine(in), "failed to connect to `user=u database=x`: 127.0.0.1:1: refused; [::1]:1: refused"; got != want {
		t.Fatalf("oneLine = %q, want %q", got, want)
	}
}

// TestConfigErrorsAllAtOnce: several wrong and missing variables are all
// reported in one run, one line each, in a stable order, and no line
// holds a value.
func TestConfigErrorsAllAtOnce(t *testing.T) {
	for k := range validEnv(t) {
		t.Setenv(k, "")
	}
	t.Setenv("PUBLIC_URL", "link.example.com")
	t.Setenv("DATABASE_URL", "postgres://u:hunter2@db:notaport/x")
	t.Setenv("SESSION_KEYS", "c2hvcnRrZXk=")
	t.Setenv("TOKEN_REFRESH_MARGIN", "soon")
	t.Setenv("TESLA_FLEET_API_EU", "fleet-eu")
	t.Setenv("LOG_LEVEL", "loud")
	var out, errOut bytes.Buffer
	if code := run([]string{"serve"}, &out, &errOut); code != exitConfig {
		t.Fatalf("exit %d, want %d: %s", code, exitConfig, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	// TESLA_CLIENT_SECRET is optional in serve: empty means a public client.
	want := []string{"TESLA_CLIENT_ID: is required", "TOKEN_ENCRYPTION_KEYS: is required",
		"PUBLIC_URL:", "DATABASE_URL:", "TESLA_FLEET_API_EU:", "SESSION_KEYS:", "TOKEN_REFRESH_MARGIN:", "LOG_LEVEL:"}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %d:\n%s", len(want), len(lines), errOut.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "web: configuration: "+w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	for _, secret := range []string{"hunter2", "c2hvcnRrZXk"} {
		if strings.Contains(errOut.String(), secret) {
			t.Errorf("stderr leaks %q:\n%s", secret, errOut.String())
		}
	}
}
