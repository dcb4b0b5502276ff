package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// cmdMigrate applies pending migrations and reports them.
func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := loadConfig(nil, "DATABASE_URL")
	if err != nil {
		return err
	}
	store, applied, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	store.Close()
	for _, v := range applied {
		fmt.Fprintf(stdout, "applied %s\n", v)
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date; nothing to apply")
	} else {
		fmt.Fprintf(stdout, "%d migration(s) applied; database is up to date\n", len(applied))
	}
	return nil
}
