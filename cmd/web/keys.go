package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"teslalink/internal/link"
	"teslalink/internal/seal"
)

// cmdKeys: `keys rotate` re-seals every token with the primary key;
// `keys generate` prints new key material.
func cmdKeys(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return &configError{"keys", "want 'rotate' or 'generate'"}
	}
	switch args[0] {
	case "generate":
		id, err := newKeyID(time.Now())
		if err != nil {
			return err
		}
		tok, err := seal.GenerateKey(id)
		if err != nil {
			return err
		}
		sk, err := newSessionKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "TOKEN_ENCRYPTION_KEYS entry (put it first to make it primary): %s\nSESSION_KEYS entry (put it first): %s\n",
			tok, sk)
		return nil
	case "rotate":
		fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
		fs.SetOutput(stdout)
		batch := fs.Int("batch", 500, "links per transaction batch")
		if err := fs.Parse(args[1:]); err != nil {
			return &configError{"keys rotate flags", err.Error()}
		}
		cfg, err := loadConfig(operatorEnv(os.Stderr), "DATABASE_URL", "TOKEN_ENCRYPTION_KEYS")
		if err != nil {
			return err
		}
		store, _, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer store.Close()
		svc := link.New(link.Config{Store: store, Keys: cfg.TokenKeys})
		fmt.Fprintf(stdout, "re-sealing tokens with primary key %q (batches of %d)\n", cfg.TokenKeys.PrimaryID(), *batch)
		res, err := svc.RotateKeys(ctx, *batch, func(done int) { fmt.Fprintf(stdout, "  %d re-sealed so far\n", done) })
		if err != nil {
			return fmt.Errorf("rotate: %w (%d re-sealed before the error; run again to continue)", err, res.Resealed)
		}
		fmt.Fprintf(stdout, "done: %d link(s) re-sealed, %d already on %q, %d failed to open\n", res.Resealed, res.Current, cfg.TokenKeys.PrimaryID(), res.Failed)
		if res.Failed == 0 {
			fmt.Fprintln(stdout, "every stored token now uses the primary key: older keys can be removed from TOKEN_ENCRYPTION_KEYS")
			return nil
		}
		for _, f := range res.Failures {
			if f.MissingKey {
				fmt.Fprintf(stdout, "  link %s: sealed with key %q, which TOKEN_ENCRYPTION_KEYS does not list\n", f.LinkID, f.KeyID)
			} else {
				fmt.Fprintf(stdout, "  link %s: does not open under key %q (damaged data, or that id now names other key material)\n", f.LinkID, f.KeyID)
			}
		}
		if res.Failed > len(res.Failures) {
			fmt.Fprintf(stdout, "  ... and %d more\n", res.Failed-len(res.Failures))
		}
		return fmt.Errorf("rotate: %d link(s) could not be opened and still use older keys; do not remove any key yet. "+
			"Add the missing key(s) back to TOKEN_ENCRYPTION_KEYS and run 'web keys rotate' again", res.Failed)
	}
	return &configError{"keys", fmt.Sprintf("unknown subcommand %q (want rotate or generate)", args[0])}
}

// newKeyID returns a token key id that is unique (the date, for people, plus
// 48 random bits): two keys made on the same day must never share an id,
// or a ciphertext would name a key that cannot open it.
func newKeyID(now time.Time) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key id: %w", err)
	}
	return "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b), nil
}

// newSessionKey returns a SESSION_KEYS entry: 32 random bytes, base64.
func newSessionKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate session key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
