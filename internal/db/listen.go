package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ChangesChannel is the channel the 0003 triggers notify on.
const ChangesChannel = "teslalink_changes"

// ListenChanges holds a dedicated connection listening on ChangesChannel.
// listening is called once LISTEN is in place (anything cached before then
// may have missed a change); onChange gets each payload. It returns when
// ctx ends or the connection fails; the caller decides about retrying.
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
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: wait: %w", err)
		}
		onChange(n.Payload)
	}
}
