package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// docs/security.md, "Sessions": the session cookie's attributes; sessions are server-side,
// so an old cookie replayed after logout or revoke is signed out.
func TestSecuritySessionCookie(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	res, _ := b.Login("ann@example.com", vehicleScopes, nil)
	c := setCookieNamed(res, sessionCookie)
	if c == nil || c.Value == "" {
		t.Fatalf("callback sets no %s cookie: %v", sessionCookie, res.Header.Values("Set-Cookie"))
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("session cookie attributes: %+v", c)
	}
	if n := countRows(t, e, "sessions"); n != 1 {
		t.Errorf("%d session rows, want 1", n)
	}
	// Replaying the value in another client works while the session lives...
	if status, _ := accountWithCookie(e, c.Value); status != http.StatusOK {
		t.Fatalf("live cookie in another client: %d", status)
	}
	_, body := b.Get("/account")
	res, body = b.PostForm("/logout", url.Values{"csrf": {csrfOf(t, body)}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Sign in again") {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if out := setCookieNamed(res, sessionCookie); out == nil || out.MaxAge >= 0 && out.Value != "" {
		t.Errorf("logout does not expire the cookie: %+v", out)
	}
	// ...and not after logout: the row is gone.
	if status, loc := accountWithCookie(e, c.Value); status != http.StatusSeeOther || loc != "/" {
		t.Errorf("replayed cookie after logout: %d %q, want 303 /", status, loc)
	}
	if n := countRows(t, e, "sessions"); n != 0 {
		t.Errorf("%d session rows after logout", n)
	}

	// Revoke ends every session of the owner, also in other browsers.
	b2, b3 := e.Browser(), e.Browser()
	csrf := signIn(t, e, b2, "ann@example.com")
	signIn(t, e, b3, "ann@example.com")
	other := jarCookie(e, b3, sessionCookie)
	res, _ = b2.PostForm("/account/revoke", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if status, loc := accountWithCookie(e, other); status != http.StatusSeeOther || loc != "/" {
		t.Errorf("other browser's cookie after revoke: %d %q", status, loc)
	}
	if n := countRows(t, e, "sessions"); n != 0 {
		t.Errorf("%d session rows after revoke", n)
	}

	t.Run("plain HTTP dev mode", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{PlainHTTP: true})
		res, _ := e.Browser().Login("ann@example.com", vehicleScopes, nil)
		c := setCookieNamed(res, "teslalink")
		if c == nil || c.Value == "" || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("dev session cookie: %+v", c)
		}
	})
}

// docs/security.md, "Sessions": a new session id at login; a planted pre-login cookie does
// not authenticate afterwards.
func TestSecuritySessionFixation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	attacker, victim := e.Browser(), e.Browser()
	signIn(t, e, attacker, "mallory@example.com")
	planted := jarCookie(e, attacker, sessionCookie)
	if planted == "" {
		t.Fatal("attacker has no session cookie")
	}
	plantCookie(e, victim, sessionCookie, planted)
	res, _ := victim.Login("victim@example.com", vehicleScopes, nil)
	c := setCookieNamed(res, sessionCookie)
	if c == nil || c.Value == "" || c.Value == planted {
		t.Fatalf("login did not issue a new session cookie: %+v", c)
	}
	if status, loc := accountWithCookie(e, planted); status != http.StatusSeeOther || loc != "/" {
		t.Errorf("planted cookie after the victim's login: %d %q, want signed out", status, loc)
	}
	_, body := victim.Get("/account")
	if !strings.Contains(body, "victim@example.com") || strings.Contains(body, "mallory@example.com") {
		t.Error("victim's account page shows the wrong owner")
	}

	// Signing in again in the same browser rotates the id as well.
	before := jarCookie(e, victim, sessionCookie)
	res, _ = victim.Login("victim@example.com", vehicleScopes, nil)
	if after := setCookieNamed(res, sessionCookie); after == nil || after.Value == before {
		t.Error("second login kept the session id")
	}
	if status, _ := accountWithCookie(e, before); status != http.StatusSeeOther {
		t.Errorf("previous session still authenticates: %d", status)
	}
}

// docs/security.md, "Sessions": idle and absolute timeouts, enforced on the server.
func TestSecuritySessionTimeouts(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		clk := teslasim.NewClock(time.Now())
		e := testenv.New(t, testenv.Options{SessionNow: clk.Now, SessionIdle: 30 * time.Minute, SessionMaxAge: 12 * time.Hour})
		b := e.Browser()
		signIn(t, e, b, "ann@example.com")
		cookie := jarCookie(e, b, sessionCookie)
		for range 3 { // activity keeps the session alive well past the idle timeout
			clk.Advance(25 * time.Minute)
			if res, _ := b.Get("/account"); res.StatusCode != http.StatusOK {
				t.Fatalf("active session ended: %d", res.StatusCode)
			}
		}
		clk.Advance(31 * time.Minute)
		if status, loc := accountWithCookie(e, cookie); status != http.StatusSeeOther || loc != "/" {
			t.Errorf("after 31 idle minutes: %d %q", status, loc)
		}
		if n := countRows(t, e, "sessions"); n != 0 {
			t.Errorf("idle session row kept: %d", n)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		clk := teslasim.NewClock(time.Now())
		e := testenv.New(t, testenv.Options{SessionNow: clk.Now, SessionIdle: 30 * time.Minute, SessionMaxAge: 2 * time.Hour})
		b := e.Browser()
		signIn(t, e, b, "ann@example.com")
		for i := range 5 { // 20, 40, ... 100 minutes: still fine
			clk.Advance(20 * time.Minute)
			if res, _ := b.Get("/account"); res.StatusCode != http.StatusOK {
				t.Fatalf("step %d: %d", i, res.StatusCode)
			}
		}
		clk.Advance(21 * time.Minute) // 121 minutes, never idle
		if res, _ := b.Get("/account"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Errorf("after the absolute lifetime: %d", res.StatusCode)
		}
	})
}

// docs/security.md, "CSRF and headers": state-changing requests refuse cross-site forgery.
func TestSecurityCSRF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		csrf    string // "own", "other", "" (none)
	}{
		{"revoke, Origin evil", "/account/revoke", map[string]string{"Origin": "https://evil.example"}, "own"},
		{"revoke, Origin null", "/account/revoke", map[string]string{"Origin": "null"}, "own"},
		{"revoke, Sec-Fetch-Site cross-site", "/account/revoke", map[string]string{"Sec-Fetch-Site": "cross-site"}, "own"},
		{"revoke, Sec-Fetch-Site same-site", "/account/revoke", map[string]string{"Sec-Fetch-Site": "same-site"}, "own"},
		{"revoke, same origin without token", "/account/revoke", map[string]string{"Sec-Fetch-Site": "same-origin"}, ""},
		{"revoke, no headers, no token", "/account/revoke", nil, ""},
		{"revoke, another session's token", "/account/revoke", map[string]string{"Sec-Fetch-Site": "same-origin"}, "other"},
		{"logout, Origin evil", "/logout", map[string]string{"Origin": "https://evil.example"}, "own"},
		{"logout, no token", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			victim, other := e.Browser(), e.Browser()
			own := signIn(t, e, victim, "ann@example.com")
			foreign := signIn(t, e, other, "bob@example.com")
			form := url.Values{}
			switch tc.csrf {
			case "own":
				form.Set("csrf", own)
			case "other":
				form.Set("csrf", foreign)
			}
			req, _ := http.NewRequest(http.MethodPost, e.URL+tc.path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			res, _ := victim.Do(req)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", res.StatusCode)
			}
			for owner := int64(1); owner <= 2; owner++ {
				if l := linkOf(t, e, owner); l.Status != db.StatusActive || l.RefreshTokenSealed == nil {
					t.Errorf("owner %d's link changed: %s", owner, l.Status)
				}
			}
			if res, _ := victim.Get("/account"); res.StatusCode != http.StatusOK {
				t.Errorf("victim's session ended: %d", res.StatusCode)
			}
			// Control: the same request from the page itself succeeds.
			res, _ = victim.PostForm(tc.path, url.Values{"csrf": {own}})
			if res.StatusCode != http.StatusOK {
				t.Errorf("genuine POST %s: %d", tc.path, res.StatusCode)
			}
		})
	}
	t.Run("GET does not revoke", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{})
		b := e.Browser()
		csrf := signIn(t, e, b, "ann@example.com")
		b.Get("/account/revoke?csrf=" + url.QueryEscape(csrf))
		if l := linkOf(t, e, 1); l.Status != db.StatusActive {
			t.Errorf("GET changed the link: %s", l.Status)
		}
	})
}

// docs/security.md, "CSRF and headers": security headers; HSTS only over HTTPS.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "https", true: "plain http"}[plain], func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{PlainHTTP: plain})
			b := e.Browser()
			var responses []*http.Response
			for _, p := range []string{"/", "/connect", "/account", "/nope", "/auth/tesla/callback?state=x", "/healthz"} {
				res, _ := b.Get(p)
				responses = append(responses, res)
			}
			res, _ := b.PostForm("/connect", url.Values{"scope": vehicleScopes})
			responses = append(responses, res)
			for _, res := range responses {
				where := res.Request.Method + " " + res.Request.URL.Path
				csp := res.Header.Get("Content-Security-Policy")
				directives := map[string]string{}
				for _, d := range strings.Split(csp, ";") {
					name, val, _ := strings.Cut(strings.TrimSpace(d), " ")
					directives[name] = val
				}
				if directives["default-src"] != "'none'" {
					t.Errorf("%s: CSP default-src %q", where, directives["default-src"])
				}
				if directives["frame-ancestors"] != "'none'" {
					t.Errorf("%s: CSP frame-ancestors %q", where, directives["frame-ancestors"])
				}
				for _, d := range []string{"script-src", "script-src-elem", "default-src"} {
					if v := directives[d]; strings.Contains(v, "unsafe-inline") || strings.Contains(v, "unsafe-eval") || strings.Contains(v, "*") {
						t.Errorf("%s: CSP %s %q", where, d, v)
					}
				}
				if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("%s: X-Content-Type-Options %q", where, got)
				}
				hsts := res.Header.Get("Strict-Transport-Security")
				if plain && hsts != "" {
					t.Errorf("%s: HSTS over plain HTTP: %q", where, hsts)
				}
				if !plain && !strings.Contains(hsts, "max-age=") {
					t.Errorf("%s: no HSTS over HTTPS", where)
				}
			}
		})
	}
}

// docs/security.md, "Owner isolation": owner B can neither see nor revoke owner A's link.
func TestSecurityOwnerIsolation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ann, bob := e.Browser(), e.Browser()
	signIn(t, e, ann, "ann@example.com")
	bobCSRF := signIn(t, e, bob, "bob@example.com")
	a, bl := linkOf(t, e, 1), linkOf(t, e, 2)
	if a.OwnerEmail != "ann@example.com" || bl.OwnerEmail != "bob@example.com" {
		t.Fatalf("owners: %s %s", a.OwnerEmail, bl.OwnerEmail)
	}
	_, annPage := ann.Get("/account")
	annVINs := vinRe.FindAllString(annPage, -1)
	if len(annVINs) == 0 {
		t.Fatal("ann's page lists no vehicles")
	}
	for _, path := range []string{"/account", "/account/revoke", "/connect?relink=1", "/account?owner=1&link=" + a.ID} {
		_, body := bob.Get(path)
		if strings.Contains(body, "ann@example.com") || strings.Contains(body, a.ID) {
			t.Errorf("bob's %s shows ann's account", path)
		}
		for _, v := range annVINs {
			if strings.Contains(body, v) {
				t.Errorf("bob's %s shows ann's vehicle %s", path, v)
			}
		}
	}
	// Bob revokes, naming Ann's link and owner every way a form could.
	res, _ := bob.PostForm("/account/revoke", url.Values{"csrf": {bobCSRF}, "link": {a.ID}, "link_id": {a.ID}, "owner": {"1"}, "owner_id": {"1"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("bob's revoke: %d", res.StatusCode)
	}
	if l := linkOf(t, e, 1); l.Status != db.StatusActive || l.RefreshTokenSealed == nil {
		t.Errorf("ann's link after bob's revoke: %s", l.Status)
	}
	if l := linkOf(t, e, 2); l.Status != db.StatusRevoked {
		t.Errorf("bob's link: %s", l.Status)
	}
	if res, body := ann.Get("/account"); res.StatusCode != http.StatusOK || !strings.Contains(body, "ann@example.com") {
		t.Errorf("ann's session after bob's revoke: %d", res.StatusCode)
	}
}

var vinRe = regexp.MustCompile(`data-vin="[^"]+"`)
