package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChangesChannel is the channel the 0003 triggers notify on.
const ChangesChannel = "teslalink_changes"

// listenHeartbeat is how often an idle listening connection is checked, so
// a silently dropped connection (no notifications, no error) is noticed.
const listenHeartbeat = 2 * time.Second

// ListenChanges holds a dedicated connection listening on ChangesChannel.
// listening is called once LISTEN is in place (anything cached before then
// may have missed a change); onChange gets each payload. Every heartbeat
// without notifications it pings the server, with a deadline. It returns
// when ctx ends or the connection fails or stops answering; the caller
// decides about retrying.
func (s *Store) ListenChanges(ctx context.Context, listening func(), onChange func(payload string)) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen: acquire: %w", err)
	}
	conn := pc.Hijack() // a LISTEN connection must not go back to the pool
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ChangesChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenHeartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			onChange(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("listen: wait: %w", err)
		}
		// Quiet for a while: make sure the connection still answers.
		pctx, cancel := context.WithTimeout(ctx, listenHeartbeat)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("listen: heartbeat: %w", err)
		}
	}
}
