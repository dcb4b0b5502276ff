package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDevCommand runs `web dev` as a person would, twice: it serves /,
// /healthz and /readyz, stops its PostgreSQL on Ctrl-C, and keeps the data.
func TestDevCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir, err := os.MkdirTemp("", "teslalink-devtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "web")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	devDir := filepath.Join(dir, "dev")

	first := startDev(t, bin, devDir)
	for _, p := range []string{"/", "/healthz", "/readyz", "/connect"} {
		res, err := http.Get(first.url + p)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, err, res)
		}
		res.Body.Close()
	}
	// Metrics are on by default, on loopback, apart from the public port.
	if !strings.HasPrefix(first.metricsURL, "http://127.0.0.1:") || strings.HasPrefix(first.metricsURL, first.url+"/") {
		t.Fatalf("web dev metrics at %q", first.metricsURL)
	}
	if res, err := http.Get(first.metricsURL); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", first.metricsURL, err, res)
	} else {
		res.Body.Close()
	}
	// The first start prints a ready development API key.
	if first.apiKey == "" {
		t.Fatal("web dev printed no development API key")
	}
	req, _ := http.NewRequest("GET", first.url+"/api/v1/links", nil)
	req.Header.Set("Authorization", "Bearer "+first.apiKey)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /api/v1/links with the dev key: %v %v", err, res)
	} else {
		res.Body.Close()
	}
	// Operator commands in the same checkout reach the dev database without
	// DATABASE_URL, and say so.
	opEnv := append(filterEnv(os.Environ()), "TESLALINK_DEV_DIR="+devDir)
	list := exec.Command(bin, "apiclient", "list")
	list.Env = opEnv
	var listOut, listErr strings.Builder
	list.Stdout, list.Stderr = &listOut, &listErr
	if err := list.Run(); err != nil || !strings.Contains(listOut.String(), "dev ") ||
		!strings.Contains(listErr.String(), "using the database of the running web dev") {
		t.Fatalf("apiclient list against web dev: %v\nstdout: %s\nstderr: %s", err, listOut.String(), listErr.String())
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, first.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO owners (sub, email) VALUES ('kept-sub', 'kept@example.com')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	first.stop(t)
	if out, _ := exec.Command("pgrep", "-f", "postgres -D "+devDir).Output(); len(out) > 0 {
		t.Fatalf("postgres still running after Ctrl-C: %s", out)
	}

	// The simulator's state is kept for the next start.
	if fi, err := os.Stat(filepath.Join(devDir, "teslasim.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("simulator state not kept: %v", err)
	}
	// Stopped: the record is gone, and the command asks for DATABASE_URL.
	list = exec.Command(bin, "apiclient", "list")
	list.Env = opEnv
	if out, err := list.CombinedOutput(); err == nil || !strings.Contains(string(out), "DATABASE_URL") {
		t.Fatalf("apiclient list after web dev stopped: %v %s", err, out)
	}

	second := startDev(t, bin, devDir)
	if second.apiKey != "" {
		t.Error("the development API key was printed again")
	}
	conn, err = pgx.Connect(ctx, second.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var email string
	err = conn.QueryRow(ctx, "SELECT email FROM owners WHERE sub = 'kept-sub'").Scan(&email)
	conn.Close(ctx)
	if err != nil || email != "kept@example.com" {
		t.Fatalf("data not kept between runs: %v", err)
	}
	second.stop(t)
}

type devRun struct {
	cmd    *exec.Cmd
	url    string
	dbURL  string
	simURL string
	apiKey string
	// metricsURL is where web dev serves /metrics (from its log).
	metricsURL string
	done       chan error
}

var psqlRe = regexp.MustCompile(`psql "([^"]+)"`)

var metricsRe = regexp.MustCompile(`metrics listening.*url=(http://[^ ]+/metrics)`)

func startDev(t *testing.T, bin, devDir string) *devRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simAddr := simLn.Addr().String()
	simLn.Close()
	cmd := exec.Command(bin, "dev", "--addr", addr, "--sim-addr", simAddr)
	cmd.Env = append(filterEnv(os.Environ()), "TESLALINK_DEV_DIR="+devDir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &devRun{cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := psqlRe.FindStringSubmatch(line); m != nil {
				r.dbURL = m[1]
			}
			if k := keyRe.FindString(line); k != "" {
				r.apiKey = k
			}
			if m := metricsRe.FindStringSubmatch(line); m != nil {
				r.metricsURL = m[1]
			}
			if strings.HasPrefix(line, "Tesla simulator: ") {
				r.simURL = strings.Fields(line)[2]
			}
			if strings.Contains(line, "teslalink dev is ready") {
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { r.done <- cmd.Wait() }()
	select {
	case <-ready:
		t.Logf("web dev ready in %v", time.Since(start).Round(time.Millisecond))
		if r.simURL != "http://"+simAddr {
			t.Errorf("simulator at %q, want http://%s (--sim-addr)", r.simURL, simAddr)
		}
	case err := <-r.done:
		t.Fatalf("web dev exited early: %v", err)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("web dev not ready within 60s")
	}
	return r
}

func (r *devRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("web dev exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		t.Fatal("web dev did not stop on Ctrl-C")
	}
}

// filterEnv drops configuration that would turn off the embedded defaults.
func filterEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "TESLA_CLIENT_ID", "PUBLIC_URL", "ADDR", "TOKEN_ENCRYPTION_KEYS", "SESSION_KEYS":
			continue
		}
		out = append(out, kv)
	}
	return out
}
