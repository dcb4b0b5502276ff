package db

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChangesChannel is the channel the 0003 triggers notify on.
const ChangesChannel = "teslalink_changes"

// listenHeartbeat is how often the listener proves that notifications
// still arrive: it sends one to itself through the pool (the way every
// change notification is sent) and must receive it back within this time.
const listenHeartbeat = 2 * time.Second

// heartbeatPrefix marks the listener's own notifications; every instance
// sees every instance's heartbeats and ignores those that are not its own.
const heartbeatPrefix = "heartbeat:"

// SetListenURL makes ListenChanges use its own direct connection to url
// instead of one taken from the pool: for deployments whose DATABASE_URL
// goes through a pooler in transaction mode, where LISTEN never receives
// (LISTEN_DATABASE_URL). Call it before ListenChanges; "" means the pool.
func (s *Store) SetListenURL(url string) { s.listenURL = url }

// ListenChanges holds a dedicated connection listening on ChangesChannel
// and hands each change's payload to onChange. listening is called once
// the first heartbeat has come back, i.e. once notifications are known to
// arrive (anything cached before then may have missed a change). It
// returns when ctx ends, the connection fails, or a heartbeat does not
// come back in time (the connection is up but notifications stopped); the
// caller decides about retrying.
func (s *Store) ListenChanges(ctx context.Context, listening func(), onChange func(payload string)) error {
	conn, err := s.listenConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ChangesChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for first := true; ; first = false {
		token := rand.Text()
		if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", ChangesChannel, heartbeatPrefix+token); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("listen: send heartbeat: %w", err)
		}
		back, err := waitNotifications(ctx, conn, time.Now().Add(listenHeartbeat), token, onChange)
		if err != nil {
			return err
		}
		if !back {
			return fmt.Errorf("listen: a heartbeat sent through the pool did not come back within %s: "+
				"notifications are not arriving (behind a pooler in transaction mode, set LISTEN_DATABASE_URL "+
				"to a direct connection)", listenHeartbeat)
		}
		if first {
			listening()
		}
		// Pass changes on until the next heartbeat is due.
		if _, err := waitNotifications(ctx, conn, time.Now().Add(listenHeartbeat), "", onChange); err != nil {
			return err
		}
	}
}

// waitNotifications passes change notifications to onChange until
// deadline, or until the heartbeat carrying token arrives (back is true).
// An empty token waits for the whole time.
func waitNotifications(ctx context.Context, conn *pgx.Conn, deadline time.Time, token string,
	onChange func(string)) (back bool, err error) {
	for {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if hb, ok := strings.CutPrefix(n.Payload, heartbeatPrefix); ok {
				if token != "" && hb == token {
					return true, nil
				}
				continue // an older one of ours, or another instance's
			}
			onChange(n.Payload)
		case ctx.Err() != nil:
			return false, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return false, nil
		default:
			return false, fmt.Errorf("listen: wait: %w", err)
		}
	}
}

// listenConn is the listener's own connection: a direct one to the
// listen URL when set, else one taken out of the pool for good (a LISTEN
// connection must not go back to the pool).
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	if s.listenURL != "" {
		cfg, err := pgx.ParseConfig(s.listenURL)
		if err != nil {
			return nil, errors.New("listen: LISTEN_DATABASE_URL cannot be parsed") // the URL may hold a password
		}
		cfg.ConnectTimeout = 5 * time.Second
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("listen: connect: %w", err)
		}
		return conn, nil
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen: acquire: %w", err)
	}
	return pc.Hijack(), nil
}
