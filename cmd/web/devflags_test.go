package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildWeb builds the binary into a temp dir the postgres user can reach.
func buildWeb(t *testing.T) (bin, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "teslalink-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the server runs as the postgres user when we are root
	bin = filepath.Join(dir, "web")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin, dir
}

// TestDevRefusesRemoteAddr: `web dev` with a non-loopback --addr, ADDR or
// --sim-addr stops at once (exit 2, naming --allow-remote) before starting
// anything.
func TestDevRefusesRemoteAddr(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin, dir := buildWeb(t)
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"dev", "--addr", "0.0.0.0:18080"}, ""},
		{[]string{"dev"}, "ADDR=0.0.0.0:18080"},
		{[]string{"dev", "--addr", "[::]:18080"}, ""},
		{[]string{"dev", "--sim-addr", "0.0.0.0:19090"}, ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, tc.args...)
		cmd.Env = append(filterEnv(os.Environ()), "TESLALINK_DEV_DIR="+filepath.Join(dir, "dev"))
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != exitConfig || !strings.Contains(stderr.String(), "--allow-remote") {
			t.Errorf("%v %s: %v, stderr %q", tc.args, tc.env, err, stderr.String())
		}
	}
}

// TestDevAllowRemoteWarns: with --allow-remote a wildcard address is taken,
// with a warning on stderr.
func TestDevAllowRemoteWarns(t *testing.T) {
	t.Parallel()
	cfg := &Config{Addr: "127.0.0.1:8080"}
	var stderr bytes.Buffer
	sim, err := devFlags([]string{"--addr", "0.0.0.0:8080", "--allow-remote", "--sim-addr", "127.0.0.1:9999"}, cfg, &stderr)
	if err != nil || cfg.Addr != "0.0.0.0:8080" || sim != "127.0.0.1:9999" {
		t.Fatalf("devFlags: %v %q %q", err, cfg.Addr, sim)
	}
	if !strings.Contains(stderr.String(), "WARNING") || !strings.Contains(stderr.String(), "0.0.0.0:8080") {
		t.Fatalf("no warning: %q", stderr.String())
	}
	stderr.Reset()
	if _, err := devFlags(nil, &Config{Addr: "127.0.0.1:8080"}, &stderr); err != nil || stderr.Len() != 0 {
		t.Fatalf("loopback: %v %q", err, stderr.String())
	}
}
