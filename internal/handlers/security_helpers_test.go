package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/testenv"
)

// Shared helpers of the security tests (docs/security.md).

const sessionCookie = "__Host-teslalink"

var vehicleScopes = []string{"user_data", "vehicle_device_data"}

// setCookieNamed returns the Set-Cookie of res named name, or nil.
func setCookieNamed(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setsSession reports whether res sets a (non-empty, non-expiring) session cookie.
func setsSession(res *http.Response) bool {
	c := setCookieNamed(res, sessionCookie)
	return c != nil && c.Value != "" && c.MaxAge >= 0
}

// jarCookie returns the value of the browser's cookie name, or "".
func jarCookie(e *testenv.Env, b *testenv.Browser, name string) string {
	u, _ := url.Parse(e.URL + "/")
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// plantCookie puts a cookie into the browser's jar, as an attacker or a
// replaying client would.
func plantCookie(e *testenv.Env, b *testenv.Browser, name, value string) {
	u, _ := url.Parse(e.URL + "/")
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: strings.HasPrefix(e.URL, "https:")}})
}

// countRows counts the rows of a table, straight through SQL.
func countRows(t *testing.T, e *testenv.Env, table string) int {
	t.Helper()
	conn := sqlConn(t, e)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// sqlConn opens a direct connection to the Env's database.
func sqlConn(t *testing.T, e *testenv.Env) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.DBURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// fleetCalls is the number of Fleet API calls the simulator saw.
func fleetCalls(e *testenv.Env) int {
	return e.Sim.Calls("vehicles") + e.Sim.Calls("users.me") + e.Sim.Calls("users.region")
}

// assertRejected checks what docs/security.md calls "rejected": an error page, no session
// cookie, no owner or link row, no Fleet API call.
func assertRejected(t *testing.T, e *testenv.Env, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode < 400 {
		t.Errorf("status %d (Location %q), want an error page", res.StatusCode, res.Header.Get("Location"))
	}
	if !strings.Contains(body, "<html") || !strings.Contains(body, "Try again") {
		t.Errorf("not the friendly error page: %.200s", body)
	}
	if setsSession(res) {
		t.Errorf("callback set a session cookie")
	}
	if n := countRows(t, e, "owners"); n != 0 {
		t.Errorf("%d owner rows", n)
	}
	if n := countRows(t, e, "links"); n != 0 {
		t.Errorf("%d link rows", n)
	}
	if n := countRows(t, e, "sessions"); n != 0 {
		t.Errorf("%d session rows", n)
	}
	if n := fleetCalls(e); n != 0 {
		t.Errorf("%d Fleet API calls", n)
	}
}

// signIn links email with the vehicle scopes and returns the account page's csrf token.
func signIn(t *testing.T, e *testenv.Env, b *testenv.Browser, email string) string {
	t.Helper()
	res, _ := b.Login(email, vehicleScopes, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("login %s: %d %q", email, res.StatusCode, res.Header.Get("Location"))
	}
	res, body := b.Get("/account")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, email) {
		t.Fatalf("account of %s: %d", email, res.StatusCode)
	}
	return csrfOf(t, body)
}

// withQuery returns rawURL with its query edited by edit.
func withQuery(t *testing.T, rawURL string, edit func(q url.Values)) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return u.String()
}

// accountStatus is GET /account's status and Location for a fresh browser
// holding only the given session cookie value.
func accountWithCookie(e *testenv.Env, value string) (int, string) {
	b := e.Browser()
	plantCookie(e, b, sessionCookie, value)
	res, _ := b.Get("/account")
	return res.StatusCode, res.Header.Get("Location")
}
