package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/seal"
	"teslalink/internal/testenv"
)

// dumpTables returns every row of the service's tables as text (bytea as hex)
// plus the raw bytes of the sealed columns.
func dumpTables(t *testing.T, e *testenv.Env) string {
	t.Helper()
	conn := sqlConn(t, e)
	var sb strings.Builder
	for _, table := range []string{"owners", "links", "sessions", "used_login_states", "activity"} {
		rows, err := conn.Query(context.Background(), "SELECT t::text FROM "+table+" t")
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			sb.WriteString(s + "\n")
		}
		rows.Close()
	}
	rows, err := conn.Query(context.Background(), "SELECT coalesce(refresh_token_sealed, ''), coalesce(access_token_sealed, '') FROM links")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r, a []byte
		if err := rows.Scan(&r, &a); err != nil {
			t.Fatal(err)
		}
		sb.Write(r)
		sb.Write(a)
	}
	return sb.String()
}

func ad(linkID, purpose string) []byte { return []byte("teslalink/link/" + linkID + "/" + purpose) }

// docs/security.md, "Tokens at rest": tokens at rest are sealed: no plaintext in the database,
// the key id travels with the blob, a fresh nonce per seal, bound to the row.
func TestSecurityTokensSealed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	signIn(t, e, e.Browser(), "ann@example.com")
	first := linkOf(t, e, 1)
	signIn(t, e, e.Browser(), "ann@example.com") // relink: new tokens, same row
	l := linkOf(t, e, 1)
	if l.ID != first.ID {
		t.Fatalf("relink made a new link row")
	}

	dump := dumpTables(t, e)
	secrets := e.Sim.Secrets()
	if len(secrets) < 7 {
		t.Fatalf("only %d simulator secrets", len(secrets))
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(dump, s) {
			t.Errorf("plaintext secret %.8s… in the database", s)
		}
	}

	rt, err := e.Keys.Open(l.RefreshTokenSealed, ad(l.ID, "refresh_token"))
	if err != nil || !contains(secrets, string(rt)) {
		t.Fatalf("refresh token does not open to a simulator token: %v", err)
	}
	at, err := e.Keys.Open(l.AccessTokenSealed, ad(l.ID, "access_token"))
	if err != nil || !contains(secrets, string(at)) {
		t.Fatalf("access token does not open to a simulator token: %v", err)
	}
	for _, blob := range [][]byte{l.RefreshTokenSealed, l.AccessTokenSealed} {
		if id, err := seal.KeyID(blob); err != nil || id != e.Keys.PrimaryID() || l.TokenKeyID != id {
			t.Errorf("key id %q (row %q), want %q", id, l.TokenKeyID, e.Keys.PrimaryID())
		}
	}
	// The purpose is bound: the refresh ciphertext does not open as an access token.
	if _, err := e.Keys.Open(l.RefreshTokenSealed, ad(l.ID, "access_token")); err == nil {
		t.Error("refresh ciphertext opens with the access token's associated data")
	}
	// Fresh nonces: nonce = the 12 bytes after version, id length and id.
	nonce := func(b []byte) []byte { n := 2 + int(b[1]); return b[n : n+12] }
	seen := [][]byte{nonce(first.RefreshTokenSealed), nonce(first.AccessTokenSealed), nonce(l.RefreshTokenSealed), nonce(l.AccessTokenSealed)}
	for i := range seen {
		for j := i + 1; j < len(seen); j++ {
			if bytes.Equal(seen[i], seen[j]) {
				t.Errorf("nonce reused between seals %d and %d", i, j)
			}
		}
	}
}

// docs/security.md, "Tokens at rest": a ciphertext copied to another row fails to open; the
// request fails cleanly (an error, no panic, no call to Tesla, nothing changed).
func TestSecuritySealedTokenSwap(t *testing.T) {
	t.Parallel()
	for _, col := range []string{"refresh_token_sealed", "access_token_sealed"} {
		t.Run(col, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			signIn(t, e, e.Browser(), "ann@example.com")
			bob := e.Browser()
			signIn(t, e, bob, "bob@example.com")
			a, b := linkOf(t, e, 1), linkOf(t, e, 2)
			if _, err := sqlConn(t, e).Exec(context.Background(),
				`UPDATE links SET `+col+` = (SELECT `+col+` FROM links WHERE id = $1) WHERE id = $2`, a.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			calls := e.Sim.AllCalls()
			var tok *link.Token
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("AccessToken panicked: %v", p)
					}
				}()
				tok, err = e.Links.AccessToken(context.Background(), b.ID, link.TokenRequest{ForceRefresh: col == "refresh_token_sealed"})
			}()
			if err == nil {
				t.Fatalf("AccessToken succeeded with another row's ciphertext (token of %s)", tok.Link.OwnerEmail)
			}
			if !errors.Is(err, seal.ErrOpen) {
				t.Errorf("error %v, want it to wrap seal.ErrOpen", err)
			}
			if got := e.Sim.AllCalls(); got["token.refresh_token"] != calls["token.refresh_token"] {
				t.Errorf("a refresh was sent to Tesla with an unopenable token")
			}
			if after := linkOf(t, e, 2); after.Status != db.StatusActive {
				t.Errorf("B's status changed to %s", after.Status)
			}
			// The owner's page still renders (vehicles become a note).
			res, body := bob.Get("/account")
			// (With only the refresh token swapped, the access token is still good.)
			if res.StatusCode != http.StatusOK || col == "access_token_sealed" && strings.Contains(body, "data-vin=") {
				t.Errorf("bob's account page: %d", res.StatusCode)
			}
			if leaks := e.Leaks(bob); len(leaks) > 0 {
				t.Errorf("leaked: %v", leaks)
			}
		})
	}
}

// docs/security.md, "Tokens at rest": old ciphertexts open after a key rotation; new seals use
// the new primary; without the old key they fail loudly.
func TestSecurityTokenKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, _ := seal.GenerateKey("old")
	newKey, _ := seal.GenerateKey("new")
	e1 := testenv.New(t, testenv.Options{TokenKeys: oldKey})
	signIn(t, e1, e1.Browser(), "ann@example.com")
	l := linkOf(t, e1, 1)
	if l.TokenKeyID != "old" {
		t.Fatalf("key id %q", l.TokenKeyID)
	}

	onlyNew := testenv.New(t, testenv.Options{TokenKeys: newKey, DatabaseURL: e1.DBURL, Sim0: e1.Sim})
	if _, err := onlyNew.Links.AccessToken(context.Background(), l.ID, link.TokenRequest{}); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("without the old key: %v, want ErrUnknownKey", err)
	}

	rotated := testenv.New(t, testenv.Options{TokenKeys: newKey + "," + oldKey, DatabaseURL: e1.DBURL, Sim0: e1.Sim})
	if _, err := rotated.Links.AccessToken(context.Background(), l.ID, link.TokenRequest{}); err != nil {
		t.Fatalf("old ciphertext under [new, old]: %v", err)
	}
	if _, err := rotated.Links.AccessToken(context.Background(), l.ID, link.TokenRequest{ForceRefresh: true}); err != nil {
		t.Fatalf("refresh under [new, old]: %v", err)
	}
	after := linkOf(t, e1, 1)
	for _, blob := range [][]byte{after.RefreshTokenSealed, after.AccessTokenSealed} {
		if id, _ := seal.KeyID(blob); id != "new" || after.TokenKeyID != "new" {
			t.Errorf("after refresh: blob key %q, row key %q, want new", id, after.TokenKeyID)
		}
	}
}

// docs/security.md, "Tokens at rest": revoke deletes the ciphertexts, not just a flag; twice is fine.
func TestSecurityRevokeDeletesCiphertexts(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann, bob := e.Browser(), e.Browser()
	csrf := signIn(t, e, ann, "ann@example.com")
	signIn(t, e, bob, "bob@example.com")
	res, _ := ann.PostForm("/account/revoke", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	conn := sqlConn(t, e)
	var status string
	var nulls bool
	err := conn.QueryRow(context.Background(), `SELECT l.status, l.refresh_token_sealed IS NULL AND l.access_token_sealed IS NULL
		AND l.token_key_id IS NULL AND l.access_token_expires_at IS NULL FROM links l WHERE owner_id = 1`).Scan(&status, &nulls)
	if err != nil {
		t.Fatal(err)
	}
	if status != db.StatusRevoked || !nulls {
		t.Errorf("revoked row: status %s, ciphertexts NULL %v", status, nulls)
	}
	if l := linkOf(t, e, 2); l.Status != db.StatusActive || l.RefreshTokenSealed == nil || l.AccessTokenSealed == nil {
		t.Errorf("the other owner's link was touched: %s", l.Status)
	}
	a := linkOf(t, e, 1)
	if _, err := e.Links.Revoke(context.Background(), a.ID, "owner"); err != nil {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := e.Links.AccessToken(context.Background(), a.ID, link.TokenRequest{}); !errors.Is(err, link.ErrRevoked) {
		t.Errorf("token of a revoked link: %v", err)
	}
}
