package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
)

// cmdAPIClient manages the team's API keys: create, list, revoke.
func cmdAPIClient(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return &configError{"apiclient", "want 'create NAME [--scopes ...]', 'list', 'rotate NAME [--overlap 24h]' or 'revoke NAME' (see 'web apiclient --help')"}
	}
	switch args[0] {
	case "create":
		return apiClientCreate(ctx, args[1:], stdout)
	case "list":
		if len(args) > 1 {
			return &configError{"apiclient list", "takes no arguments"}
		}
		return withStore(ctx, func(store *db.Store) error { return apiClientList(ctx, store, stdout) })
	case "revoke":
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			return &configError{"apiclient revoke", "want exactly one client NAME"}
		}
		return withStore(ctx, func(store *db.Store) error { return apiClientRevoke(ctx, store, args[1], stdout) })
	case "rotate":
		return apiClientRotate(ctx, args[1:], stdout)
	}
	return &configError{"apiclient", fmt.Sprintf("unknown subcommand %q (want create, list, rotate or revoke)", args[0])}
}

// withStore opens the database (applying migrations) for an operator command.
func withStore(ctx context.Context, fn func(*db.Store) error) error {
	cfg, err := loadConfig(operatorEnv(os.Stderr), "DATABASE_URL")
	if err != nil {
		return err
	}
	store, _, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

func apiClientCreate(ctx context.Context, args []string, stdout io.Writer) error {
	// NAME may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs, err := findCommand("apiclient create").parseFlags(args)
	if err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return &configError{"apiclient create", "want exactly one client NAME"}
	}
	if err := validClientName(name); err != nil {
		return &configError{"apiclient create NAME", err.Error()}
	}
	scopes, err := apikey.ParseScopes(flagString(fs, "scopes"))
	if err != nil {
		return &configError{"--scopes", err.Error()}
	}
	display := flagString(fs, "display-name")
	if len(display) > 100 || strings.ContainsFunc(display, unicode.IsControl) {
		return &configError{"--display-name", "must be at most 100 characters without control characters"}
	}
	key, err := apikey.New()
	if err != nil {
		return err
	}
	return withStore(ctx, func(store *db.Store) error {
		c, err := store.CreateAPIClient(ctx, name, key.Display, key.Hash, scopes)
		if errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("an active API client named %q already exists: pick another name, give it a new key with "+
				"'web apiclient rotate %s', or revoke it with 'web apiclient revoke %s' (a revoked client's name can be used again)", name, name, name)
		}
		if err != nil {
			return err
		}
		if display != "" {
			if err := store.SetAPIClientDisplayName(ctx, c.Name, display); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "API client %q created with scopes %s.\n\n", c.Name, strings.Join(c.Scopes, ", "))
		fmt.Fprintf(stdout, "API key (shown only this once; only its hash is stored, it cannot be shown again):\n\n    %s\n\n", key.Secret)
		fmt.Fprintf(stdout, "Send it as 'Authorization: Bearer <key>'. Revoke with: web apiclient revoke %s\n", c.Name)
		return nil
	})
}

func validClientName(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if len(name) > 64 {
		return errors.New("must be at most 64 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return errors.New("may hold only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func apiClientList(ctx context.Context, store *db.Store, stdout io.Writer) error {
	clients, err := store.ListAPIClients(ctx)
	if err != nil {
		return err
	}
	if len(clients) == 0 {
		fmt.Fprintln(stdout, "no API clients yet; create one with: web apiclient create NAME")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKEY PREFIX\tSCOPES\tCREATED\tLAST USED\tREVOKED")
	for _, c := range clients {
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\n", c.Name, c.KeyPrefix, strings.Join(c.Scopes, ","),
			timeOrDash(c.CreatedAt, "-"), timeOrDash(c.LastUsedAt, "never"), timeOrDash(c.RevokedAt, "-"))
		if !c.OldKeyExpiresAt.IsZero() && c.RevokedAt.IsZero() {
			fmt.Fprintf(tw, "  old key\t%s…\tvalid until %s\t\t%s\t\n", c.OldKeyPrefix,
				timeOrDash(c.OldKeyExpiresAt, "-"), timeOrDash(c.OldKeyLastUsedAt, "never"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "(LAST USED is written in batches, every USAGE_FLUSH_INTERVAL, by the running service.)")
	return nil
}

func timeOrDash(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// apiClientRotate gives a client a new key; the old one keeps working for
// --overlap, so a backend can switch over without downtime.
func apiClientRotate(ctx context.Context, args []string, stdout io.Writer) error {
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	fs, err := findCommand("apiclient rotate").parseFlags(args)
	if err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return &configError{"apiclient rotate", "want exactly one client NAME"}
	}
	if err := validClientName(name); err != nil {
		return &configError{"apiclient rotate NAME", err.Error()}
	}
	overlap, err := time.ParseDuration(flagString(fs, "overlap"))
	if err != nil || overlap < 0 || overlap > 30*24*time.Hour {
		return &configError{"--overlap", "must be a duration from 0s to 720h, e.g. 24h"}
	}
	key, err := apikey.New()
	if err != nil {
		return err
	}
	return withStore(ctx, func(store *db.Store) error {
		c, err := store.RotateAPIKey(ctx, name, key.Display, key.Hash, overlap)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("no active API client named %q (see: web apiclient list)", name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API client %q has a new key (shown only this once; only its hash is stored):\n\n    %s\n\n", c.Name, key.Secret)
		if overlap > 0 {
			fmt.Fprintf(stdout, "The previous key (%s…) keeps working until %s (--overlap %s); deploy the new key before then.\n",
				c.OldKeyPrefix, timeOrDash(c.OldKeyExpiresAt, "-"), overlap)
		} else {
			fmt.Fprintf(stdout, "The previous key (%s…) is refused from now on (--overlap 0s).\n", c.OldKeyPrefix)
		}
		fmt.Fprintln(stdout, "Any key older than the previous one is refused from now on, on every instance.")
		return nil
	})
}

func apiClientRevoke(ctx context.Context, store *db.Store, name string, stdout io.Writer) error {
	c, err := store.RevokeAPIClient(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no API client named %q (see: web apiclient list)", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API client %q revoked at %s; its key (%s…) is refused from now on, on every instance.\n"+
		"Its name can be used again: web apiclient create %s\n", c.Name, c.RevokedAt.UTC().Format(time.RFC3339), c.KeyPrefix, c.Name)
	return nil
}
