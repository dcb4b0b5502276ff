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

// TestKeysRotateFailsLoudly: a token sealed with a key that is not
// configured makes `web keys rotate` exit non-zero, name the link and the
// key, and never say that older keys can be removed.
func TestKeysRotateFailsLoudly(t *testing.T) {
	dbURL := pgtest.URL(t)
	ctx := context.Background()
	lostSpec, _ := seal.GenerateKey("lost")
	oldSpec, _ := seal.GenerateKey("old")
	newSpec, _ := seal.GenerateKey("new")
	store, err := db.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := map[string]string{}
	for sub, spec := range map[string]string{"a": oldSpec, "b": lostSpec} {
		kr, _ := seal.ParseKeys(spec)
		l, err := store.SaveLink(ctx, db.LinkGrant{Sub: sub, Region: "na", GrantedScopes: []string{"openid"}},
			func(id string) (db.SealedTokens, error) {
				r, _ := kr.Seal([]byte("NA_r-"+sub), []byte("teslalink/link/"+id+"/refresh_token"))
				a, _ := kr.Seal([]byte("a-"+sub), []byte("teslalink/link/"+id+"/access_token"))
				return db.SealedTokens{KeyID: kr.PrimaryID(), Refresh: r, Access: a}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		ids[sub] = l.ID
	}
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("TOKEN_ENCRYPTION_KEYS", newSpec+","+oldSpec)
	code, out, errs := runCmd("keys", "rotate")
	if code == 0 {
		t.Fatalf("rotate exited 0 with a token it could not open:\n%s", out)
	}
	if !strings.Contains(out, "1 link(s) re-sealed") || !strings.Contains(out, "1 failed to open") ||
		!strings.Contains(out, ids["b"]) || !strings.Contains(out, `"lost"`) {
		t.Errorf("summary:\n%s", out)
	}
	if strings.Contains(out, "can be removed") || !strings.Contains(errs, "do not remove any key") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errs)
	}
}

// TestKeysGenerateUniqueIDs: two keys generated at once never share an id.
func TestKeysGenerateUniqueIDs(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 2 {
		code, out, _ := runCmd("keys", "generate")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		_, after, _ := strings.Cut(out, "primary): ")
		spec := strings.Fields(after)[0]
		if _, err := seal.ParseKeys(spec); err != nil {
			t.Fatalf("generated entry does not parse: %v", err)
		}
		id, _, _ := strings.Cut(spec, ":")
		if seen[id] {
			t.Fatalf("key id %q generated twice", id)
		}
		seen[id] = true
	}
}
