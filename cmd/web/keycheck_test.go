package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
)

// TestServeRefusesAMissingTokenKey: a key that sealed stored tokens must stay
// configured; dropping it stops start-up instead of producing unreadable data.
func TestServeRefusesAMissingTokenKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	store, err := db.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.SaveLink(ctx, db.LinkGrant{Sub: "s1", Region: "na"}, func(string) (db.SealedTokens, error) {
		return db.SealedTokens{KeyID: "old", Refresh: []byte("x"), Access: []byte("y")}, nil
	})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := seal.GenerateKey("new")
	kr, _ := seal.ParseKeys(spec)
	pub, _ := url.Parse("http://127.0.0.1:1")
	cfg := &Config{Addr: "127.0.0.1:0", PublicURL: pub, DatabaseURL: dbURL, DBMaxConns: 2, TokenKeys: kr,
		SessionKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, TeslaDiscoveryURL: "http://127.0.0.1:1/x",
		InsecureCookie: true, LogLevel: "info", LogFormat: "json"}
	err = runServer(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(string) { t.Error("server started") })
	var ce *configError
	if !errors.As(err, &ce) || ce.Var != "TOKEN_ENCRYPTION_KEYS" || !strings.Contains(ce.Msg, `"old"`) {
		t.Fatalf("err = %v", err)
	}
}
