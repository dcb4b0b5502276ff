package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
)

// devDatabaseFile is where a running `web dev` records the connection to its
// own PostgreSQL, inside TESLALINK_DEV_DIR, so that operator commands run in
// the same checkout reach that database without DATABASE_URL.
const devDatabaseFile = "database.env"

// devClientName is the API client `web dev` creates once, to print a ready key.
const devClientName = "dev"

func devDir() string { return envOr("TESLALINK_DEV_DIR", ".dev") }

// writeDevRecord records dbURL for operator commands and returns a function
// that removes the record again (when web dev stops).
func writeDevRecord(dir, dbURL string) (func(), error) {
	path := filepath.Join(dir, devDatabaseFile)
	content := fmt.Sprintf("# Written by `web dev` (pid %d) while it runs; removed when it stops.\n"+
		"# web apiclient, web keys and web webhook use it when DATABASE_URL is unset.\n"+
		"WEB_DEV_PID=%d\nDATABASE_URL=%s\n", os.Getpid(), os.Getpid(), dbURL)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return nil, fmt.Errorf("record the dev database: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("record the dev database: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

// operatorEnv is the environment of an operator command. When DATABASE_URL is
// unset and a `web dev` runs in this checkout (it recorded its database in
// TESLALINK_DEV_DIR), the command uses that database, and then also the dev
// TOKEN_ENCRYPTION_KEYS unless set; it says so on stderr. A record left by a
// web dev that no longer runs is reported, not used.
func operatorEnv(stderr io.Writer) env {
	if v, ok := os.LookupEnv("DATABASE_URL"); ok && strings.TrimSpace(v) != "" {
		return os.LookupEnv
	}
	dir := devDir()
	path := filepath.Join(dir, devDatabaseFile)
	rec, err := readEnvFile(path)
	if err != nil || rec["DATABASE_URL"] == "" {
		return os.LookupEnv
	}
	if pid, err := strconv.Atoi(rec["WEB_DEV_PID"]); err != nil || !processAlive(pid) {
		fmt.Fprintf(stderr, "web: %s was left by a web dev that no longer runs; start `web dev` again, or set DATABASE_URL\n", path)
		return os.LookupEnv
	}
	keys, _ := readEnvFile(filepath.Join(dir, "keys.env"))
	fmt.Fprintf(stderr, "web: DATABASE_URL is unset: using the database of the running web dev (from %s)\n", path)
	return func(name string) (string, bool) {
		switch name {
		case "DATABASE_URL":
			return rec["DATABASE_URL"], true
		case "TOKEN_ENCRYPTION_KEYS":
			if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
				return v, true
			}
			v, ok := keys[name]
			return v, ok
		}
		return os.LookupEnv(name)
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// devAPIKey creates the API client "dev" with every scope the first time web
// dev runs against a database, and prints its key, that once. Later runs say
// how to get another key.
func devAPIKey(ctx context.Context, cfg *Config, stdout io.Writer) error {
	store, _, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer store.Close()
	clients, err := store.ListAPIClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if c.Name == devClientName && c.RevokedAt.IsZero() {
			fmt.Fprintf(stdout, "API client %q: its key was printed when it was created; for a new one: web apiclient rotate %s\n",
				devClientName, devClientName)
			return nil
		}
	}
	key, err := apikey.New()
	if err != nil {
		return err
	}
	if _, err := store.CreateAPIClient(ctx, devClientName, key.Display, key.Hash, apikey.Scopes); err != nil {
		if errors.Is(err, db.ErrConflict) {
			return nil // another web dev created it a moment ago
		}
		return err
	}
	fmt.Fprintf(stdout, "Development API key (client %q, scopes %s; shown only this once):\n\n    %s\n\n"+
		"    curl -H 'Authorization: Bearer %s' %s/api/v1/links\n\n",
		devClientName, strings.Join(apikey.Scopes, ", "), key.Secret, key.Secret, cfg.PublicURL)
	return nil
}
