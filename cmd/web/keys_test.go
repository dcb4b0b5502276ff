package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
	"teslalink/internal/seal"
)

// TestKeysRotateCommand seals two links with an old key, then runs
// `web keys rotate` with a new primary key: everything moves to the new key
// and the command says the old one can go.
func TestKeysRotateCommand(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx := context.Background()
	oldSpec, _ := seal.GenerateKey("old")
	newSpec, _ := seal.GenerateKey("new")
	old, _ := seal.ParseKeys(oldSpec)
	store, err := db.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, sub := range []string{"a", "b"} {
		_, err := store.SaveLink(ctx, db.LinkGrant{Sub: sub, Region: "na", GrantedScopes: []string{"openid"}},
			func(id string) (db.SealedTokens, error) {
				r, _ := old.Seal([]byte("NA_r-"+sub), []byte("teslalink/link/"+id+"/refresh_token"))
				a, _ := old.Seal([]byte("a-"+sub), []byte("teslalink/link/"+id+"/access_token"))
				return db.SealedTokens{KeyID: "old", Refresh: r, Access: a}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("TOKEN_ENCRYPTION_KEYS", newSpec+","+oldSpec)
	var out bytes.Buffer
	if err := cmdKeys(ctx, []string{"rotate", "--batch", "1"}, &out); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "done: 2 link(s) re-sealed") || !strings.Contains(out.String(), "older keys can be removed") {
		t.Fatalf("output:\n%s", out.String())
	}
	ids, err := store.TokenKeyIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "new" {
		t.Fatalf("key ids after rotation: %v %v", ids, err)
	}
	if strings.Contains(out.String(), strings.SplitN(newSpec, ":", 2)[1]) {
		t.Fatal("the command printed key material")
	}
}
