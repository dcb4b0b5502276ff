// Package pgtest gives each test its own PostgreSQL database, cloned from a
// migrated template. One throwaway cluster serves a whole test binary (or
// TEST_DATABASE_URL names a server to use instead). Packages that use it call
// pgtest.Main from TestMain, so the cluster is stopped when tests end.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/db"
	"teslalink/internal/pgcluster"
)

const template = "teslalink_template"

var (
	once     sync.Once
	initErr  error
	cluster  *pgcluster.Cluster
	tmpDir   string
	adminURL func(dbname string) string
	prefix   string
	counter  atomic.Int64
	createMu sync.Mutex
)

// Main runs the tests and stops the cluster afterwards.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	if adminURL != nil && cluster == nil {
		dropOwnDatabases()
	}
	os.Exit(code)
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix = fmt.Sprintf("t%d_", os.Getpid())
	tmplName := template
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		if _, err := pgx.ParseConfig(url); err != nil {
			return fmt.Errorf("TEST_DATABASE_URL: %w", err)
		}
		adminURL = func(dbname string) string { return withDatabase(url, dbname) }
		tmplName = prefix + "template"
	} else {
		var err error
		tmpDir, err = os.MkdirTemp("", "teslalink-pgtest-")
		if err != nil {
			return err
		}
		if err := os.Chmod(tmpDir, 0o755); err != nil {
			return err
		}
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{DataDir: tmpDir + "/data", Fast: true})
		if err != nil {
			return err
		}
		adminURL = cluster.URL
	}
	admin, err := pgx.Connect(ctx, adminURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect admin: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+tmplName); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+tmplName); err != nil {
		return err
	}
	store, err := db.Open(ctx, adminURL(tmplName), 2)
	if err != nil {
		return err
	}
	_, err = store.Migrate(ctx)
	store.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	templateName = tmplName
	return nil
}

var templateName string

// withDatabase replaces the database name in a postgres:// URL or key=value DSN.
func withDatabase(url, dbname string) string {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		scheme, rest, _ := strings.Cut(url, "://")
		hostPart, query, hasQuery := strings.Cut(rest, "?")
		host, _, _ := strings.Cut(hostPart, "/")
		out := scheme + "://" + host + "/" + dbname
		if hasQuery {
			out += "?" + query
		}
		return out
	}
	return url + " dbname=" + dbname
}

// URL returns the connection string of a new, migrated, empty database for
// this test; it is dropped when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { initErr = setup() })
	if initErr != nil {
		tb.Fatalf("pgtest: %v", initErr)
	}
	name := fmt.Sprintf("%s%d", prefix, counter.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	createMu.Lock()
	_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateName)
	createMu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, adminURL("postgres"))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return adminURL(name)
}

// Store returns a Store on a fresh database for this test.
func Store(tb testing.TB) *db.Store {
	tb.Helper()
	s, err := db.Open(context.Background(), URL(tb), 10)
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Cluster returns the throwaway cluster (nil when TEST_DATABASE_URL is used),
// for tests that stop and restart the server.
func Cluster() *pgcluster.Cluster { return cluster }

func dropOwnDatabases() {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminURL("postgres"))
	if err != nil {
		return
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
	}
}
