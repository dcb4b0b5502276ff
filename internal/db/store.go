// Package db holds every SQL query of teslalink: a Store around a pgx pool,
// and the migrations runner.
package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("db: not found")
	// ErrConflict means a unique value is already taken.
	ErrConflict = errors.New("db: already exists")
)

// Store is the database layer.
type Store struct {
	pool   *pgxpool.Pool
	events EventSink // nil: no events recorded
	// listenURL, when set, is a direct connection for ListenChanges.
	listenURL string
}

// Open connects to PostgreSQL. It does not wait for the server: an
// unreachable database is reported by Ping (readiness), not at start-up.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return &Store{pool: pool}, nil
}

// ParseURL validates a DATABASE_URL. The error never repeats the URL (it may hold a password).
func ParseURL(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("not a valid PostgreSQL connection string (want postgres://user:pass@host:5432/dbname)")
	}
	return cfg, nil
}

// Pool is the connection pool, for River's driver: background jobs are
// enqueued and fetched in this database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if s.poolFull() {
		return s.pingDirect(ctx)
	}
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		if s.poolFull() {
			// It filled up while we waited: busy is not down.
			return s.pingDirect(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// MaxConns is the size of the connection pool (DB_MAX_CONNS).
func (s *Store) MaxConns() int { return int(s.pool.Config().MaxConns) }

// poolFull reports whether every pooled connection is in use.
func (s *Store) poolFull() bool {
	st := s.pool.Stat()
	return st.AcquiredConns() >= st.MaxConns()
}

// pingDirect checks the database on a connection of its own, outside the
// pool: a pool busy with slow requests says nothing about the database.
func (s *Store) pingDirect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Unavailable reports whether err means the database could not be reached
// (as opposed to a query that failed), so callers can answer 503.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P: operator intervention (shutdown).
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code[:3] == "57P")
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || isNetErr(err)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// CreateDatabaseIfMissing connects to a server's maintenance database
// (adminURL) and creates database name unless it exists (for `web dev`).
func CreateDatabaseIfMissing(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("check database: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	return nil
}
