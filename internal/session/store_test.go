package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/db"
	"teslalink/internal/pgtest"
	"teslalink/internal/session"
	"teslalink/internal/teslasim"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// storeWithOwner is a fresh database with one owner (sessions reference owners).
func storeWithOwner(t *testing.T) (*db.Store, int64) {
	t.Helper()
	url := pgtest.URL(t)
	st, err := db.Open(context.Background(), url, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id int64
	if err := conn.QueryRow(context.Background(), `INSERT INTO owners (sub) VALUES ('sub-1') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return st, id
}

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t *testing.T, st *db.Store, keys [][]byte, opts session.Options) *session.Store {
	t.Helper()
	s, err := session.New(st, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// save creates a signed-in session and returns its cookie.
func save(t *testing.T, s *session.Store, owner int64) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	sess, err := s.Get(r, s.CookieName())
	if err != nil {
		t.Fatal(err)
	}
	sess.Values[session.KeyOwnerID] = owner
	sess.Values[session.KeyCSRF] = "csrf-value"
	w := httptest.NewRecorder()
	if err := sess.Save(r, w); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == s.CookieName() {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// load reports whether the cookie names a live session of owner.
func load(t *testing.T, s *session.Store, c *http.Cookie, owner int64) bool {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://example.test/", nil)
	r.AddCookie(c)
	sess, err := s.New(r, s.CookieName())
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sess.Values[session.KeyOwnerID].(int64)
	return !sess.IsNew && id == owner
}

// docs/security.md, "Sessions": keys rotate without logging everyone out: [new, old]
// verifies cookies made with [old]; new cookies are signed with new.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	st, owner := storeWithOwner(t)
	oldKey, newKey, otherKey := key(t), key(t), key(t)
	old := newStore(t, st, [][]byte{oldKey}, session.Options{})
	rotated := newStore(t, st, [][]byte{newKey, oldKey}, session.Options{})
	onlyNew := newStore(t, st, [][]byte{newKey}, session.Options{})
	other := newStore(t, st, [][]byte{otherKey}, session.Options{})

	c := save(t, old, owner)
	if !load(t, old, c, owner) {
		t.Fatal("control: the old store cannot read its own cookie")
	}
	if !load(t, rotated, c, owner) {
		t.Error("[new, old] rejects a cookie made with [old]")
	}
	if load(t, other, c, owner) {
		t.Error("a store with an unrelated key accepts the cookie")
	}
	if load(t, onlyNew, c, owner) {
		t.Error("[new] accepts a cookie made with [old] only")
	}
	fresh := save(t, rotated, owner)
	if !load(t, onlyNew, fresh, owner) {
		t.Error("a cookie made by [new, old] is not signed with new")
	}
	// A forged cookie (bit flipped) is refused.
	forged := *fresh
	b := []byte(forged.Value)
	b[len(b)/2] ^= 1
	forged.Value = string(b)
	if load(t, rotated, &forged, owner) {
		t.Error("tampered cookie accepted")
	}
}

// docs/security.md, "Sessions": missing or short keys stop start-up with a clear message.
func TestKeysRequired(t *testing.T) {
	t.Parallel()
	st := pgtest.Store(t)
	for name, keys := range map[string][][]byte{
		"none":           nil,
		"short":          {[]byte("too short")},
		"second short":   {key(t), bytes.Repeat([]byte{1}, 31)},
		"empty second":   {key(t), {}},
		"first 31 bytes": {bytes.Repeat([]byte{1}, 31)},
	} {
		if _, err := session.New(st, keys, session.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "key") {
			t.Errorf("%s: unclear message %q", name, err)
		}
	}
	if _, err := session.New(st, [][]byte{key(t), key(t)}, session.Options{}); err != nil {
		t.Errorf("two good keys: %v", err)
	}
}

// docs/security.md, "Sessions", at the store: idle and absolute timeouts use the store's
// clock and delete the row.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	st, owner := storeWithOwner(t)
	clk := teslasim.NewClock(time.Now())
	s := newStore(t, st, [][]byte{key(t)}, session.Options{Now: clk.Now, IdleTimeout: 10 * time.Minute, MaxAge: time.Hour})
	idle := save(t, s, owner)
	clk.Advance(9 * time.Minute)
	if !load(t, s, idle, owner) {
		t.Fatal("session ended before the idle timeout")
	}
	clk.Advance(9 * time.Minute) // touched 9 minutes ago
	if !load(t, s, idle, owner) {
		t.Fatal("activity did not extend the idle timeout")
	}
	clk.Advance(11 * time.Minute)
	if load(t, s, idle, owner) {
		t.Error("session survived 11 idle minutes")
	}
	clk.Advance(-11 * time.Minute)
	if load(t, s, idle, owner) {
		t.Error("an idle-expired session came back: its row was not deleted")
	}

	abs := save(t, s, owner)
	for range 6 {
		clk.Advance(9 * time.Minute)
		if !load(t, s, abs, owner) {
			t.Fatal("session ended before its absolute lifetime")
		}
	}
	clk.Advance(7 * time.Minute) // 61 minutes, never idle
	if load(t, s, abs, owner) {
		t.Error("session survived its absolute lifetime")
	}
}
