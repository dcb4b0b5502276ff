package handlers_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// docs/security.md, "Login transaction": fresh PKCE (S256), state and nonce of at least 128 bits on every login.
func TestSecurityAuthorizeParamsFresh(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	seen := map[string]string{}
	for i := range 2 {
		u, err := url.Parse(e.Browser().StartLogin(vehicleScopes))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if m := q.Get("code_challenge_method"); m != "S256" {
			t.Errorf("code_challenge_method = %q, want S256", m)
		}
		if c := q.Get("code_challenge"); len(c) != 43 {
			t.Errorf("code_challenge length %d, want 43 (base64url SHA-256)", len(c))
		}
		for _, p := range []string{"state", "nonce", "code_challenge"} {
			v := q.Get(p)
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(raw) < 16 {
				t.Errorf("%s %q: not base64url of >= 128 bits", p, v)
			}
			if prev, ok := seen[v]; ok {
				t.Errorf("login %d reuses a %s value (first seen as %s)", i, p, prev)
			}
			seen[v] = p
		}
	}
	// The verifier never leaves the server, but the simulator checks
	// S256(verifier) == challenge: a completed login proves they match.
	b := e.Browser()
	signIn(t, e, b, "pkce@example.com")
}

// docs/security.md, "Login transaction": replayed, missing, tampered or foreign state → error page, no session, no token request.
func TestSecurityStateBinding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// callback returns the URL to open and the browser to open it in.
		callback func(t *testing.T, e *testenv.Env) (*testenv.Browser, string)
	}{
		{"missing state", func(t *testing.T, e *testenv.Env) (*testenv.Browser, string) {
			b := e.Browser()
			cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
			return b, withQuery(t, cb, func(q url.Values) { q.Del("state") })
		}},
		{"empty state", func(t *testing.T, e *testenv.Env) (*testenv.Browser, string) {
			b := e.Browser()
			cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
			return b, withQuery(t, cb, func(q url.Values) { q.Set("state", "") })
		}},
		{"tampered state", func(t *testing.T, e *testenv.Env) (*testenv.Browser, string) {
			b := e.Browser()
			cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
			return b, withQuery(t, cb, func(q url.Values) {
				s, last := q.Get("state"), "A"
				if strings.HasSuffix(s, last) {
					last = "B" // the tampered state must differ (it ended in A 1 time in 64)
				}
				q.Set("state", s[:len(s)-1]+last)
			})
		}},
		{"foreign browser without login cookie", func(t *testing.T, e *testenv.Env) (*testenv.Browser, string) {
			a := e.Browser()
			cb := a.Consent(a.StartLogin(vehicleScopes), "victim@example.com", nil, true)
			return e.Browser(), cb
		}},
		{"foreign browser with its own login in progress", func(t *testing.T, e *testenv.Env) (*testenv.Browser, string) {
			a, b := e.Browser(), e.Browser()
			cb := a.Consent(a.StartLogin(vehicleScopes), "victim@example.com", nil, true)
			b.StartLogin(vehicleScopes)
			if jarCookie(e, b, "__Host-teslalink_login") == "" {
				t.Fatal("b has no login cookie")
			}
			return b, cb
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			b, cb := tc.callback(t, e)
			res, body := b.Get(cb)
			assertRejected(t, e, res, body)
			if n := e.Sim.Calls("token.authorization_code"); n != 0 {
				t.Errorf("%d token requests, want 0", n)
			}
		})
	}
}

// docs/security.md, "Login transaction": a state is consumed at the first callback, even if the login
// cookie is replayed with it.
func TestSecurityStateReplay(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
	loginCookie := jarCookie(e, b, "__Host-teslalink_login")
	if loginCookie == "" {
		t.Fatal("no login cookie after POST /connect")
	}
	res, _ := b.Get(cb)
	if res.StatusCode != http.StatusSeeOther || !setsSession(res) {
		t.Fatalf("first callback: %d", res.StatusCode)
	}
	if jarCookie(e, b, "__Host-teslalink_login") != "" {
		t.Error("login cookie not cleared by the callback")
	}
	sessions := countRows(t, e, "sessions")

	// Plain replay: the cookie is gone.
	res, body := b.Get(cb)
	if res.StatusCode < 400 || setsSession(res) || !strings.Contains(body, "Try again") {
		t.Errorf("replay: %d, sets session %v", res.StatusCode, setsSession(res))
	}
	// Replay with the login cookie put back (an attacker who copied both):
	// the server remembers the state was used.
	for _, br := range []*testenv.Browser{b, e.Browser()} {
		plantCookie(e, br, "__Host-teslalink_login", loginCookie)
		res, body = br.Get(cb)
		if res.StatusCode < 400 || setsSession(res) || !strings.Contains(body, "already used") {
			t.Errorf("replay with login cookie: %d, sets session %v", res.StatusCode, setsSession(res))
		}
	}
	if n := e.Sim.Calls("token.authorization_code"); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	if n := countRows(t, e, "sessions"); n != sessions {
		t.Errorf("sessions %d → %d after replays", sessions, n)
	}
}

// docs/security.md, "Login transaction": the login cookie's attributes, encryption, integrity and lifetime.
func TestSecurityLoginCookie(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	res, _ := b.PostForm("/connect", url.Values{"scope": vehicleScopes})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /connect: %d", res.StatusCode)
	}
	c := setCookieNamed(res, "__Host-teslalink_login")
	if c == nil {
		t.Fatalf("no __Host-teslalink_login cookie in %v", res.Header.Values("Set-Cookie"))
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("login cookie attributes: %+v", c)
	}
	if c.MaxAge < 540 || c.MaxAge > 660 {
		t.Errorf("login cookie Max-Age %d, want about 600", c.MaxAge)
	}
	q, _ := url.Parse(res.Header.Get("Location"))
	state, nonce := q.Query().Get("state"), q.Query().Get("nonce")
	raw, _ := base64.URLEncoding.DecodeString(c.Value)
	for _, secret := range []string{state, nonce} {
		if strings.Contains(c.Value, secret) || strings.Contains(string(raw), secret) {
			t.Error("login cookie carries state or nonce in clear")
		}
	}

	t.Run("tampered", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{})
		b := e.Browser()
		cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
		v := jarCookie(e, b, "__Host-teslalink_login")
		flip := "A"
		if v[10] == 'A' {
			flip = "B"
		}
		plantCookie(e, b, "__Host-teslalink_login", v[:10]+flip+v[11:])
		res, body := b.Get(cb)
		assertRejected(t, e, res, body)
		if n := e.Sim.Calls("token"); n != 0 {
			t.Errorf("%d token requests", n)
		}
	})
	t.Run("expired after 10 minutes", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{})
		b := e.Browser()
		authURL := b.StartLogin(vehicleScopes)
		e.Sim.Clock().Advance(11 * time.Minute)
		res, body := b.Get(b.Consent(authURL, "ann@example.com", nil, true))
		assertRejected(t, e, res, body)
		if n := e.Sim.Calls("token"); n != 0 {
			t.Errorf("%d token requests", n)
		}
	})
	t.Run("plain HTTP dev mode drops Secure and the prefix", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{PlainHTTP: true})
		res, _ := e.Browser().PostForm("/connect", url.Values{"scope": vehicleScopes})
		c := setCookieNamed(res, "teslalink_login")
		if c == nil || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("dev login cookie: %+v", c)
		}
	})
}

// docs/security.md, "Login transaction": one redirect_uri, byte-identical in authorize and token
// requests (the simulator refuses the code exchange otherwise).
func TestSecurityRedirectURI(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	authURL := b.StartLogin(vehicleScopes)
	u, _ := url.Parse(authURL)
	if got, want := u.Query().Get("redirect_uri"), e.URL+"/auth/tesla/callback"; got != want {
		t.Errorf("authorize redirect_uri = %q, want %q", got, want)
	}
	res, _ := b.Get(b.Consent(authURL, "ann@example.com", nil, true))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("callback: %d %q (token request refused?)", res.StatusCode, res.Header.Get("Location"))
	}
	if n := e.Sim.Calls("token.authorization_code"); n != 1 {
		t.Errorf("%d code exchanges", n)
	}
}

// docs/security.md, "Login transaction": mix-up defence on the callback's issuer parameters.
func TestSecurityCallbackIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(e *testenv.Env, q url.Values)
		ok   bool
	}{
		{"tesla issuer as sent", func(*testenv.Env, url.Values) {}, true},
		{"rfc9207 iss equals discovered issuer", func(e *testenv.Env, q url.Values) { q.Set("iss", e.Sim.IDTokenIssuer()) }, true},
		{"no issuer at all", func(_ *testenv.Env, q url.Values) { q.Del("issuer") }, true},
		{"tesla issuer wrong", func(_ *testenv.Env, q url.Values) { q.Set("issuer", "https://evil.example/oauth2/v3") }, false},
		{"tesla issuer empty", func(_ *testenv.Env, q url.Values) { q.Set("issuer", "") }, false},
		{"tesla issuer twice", func(_ *testenv.Env, q url.Values) { q.Add("issuer", "https://evil.example/oauth2/v3") }, false},
		{"rfc9207 iss wrong", func(_ *testenv.Env, q url.Values) { q.Set("iss", "https://evil.example") }, false},
		{"rfc9207 iss is the callback issuer", func(e *testenv.Env, q url.Values) { q.Set("iss", e.Sim.CallbackIssuer()) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			b := e.Browser()
			cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
			if u, _ := url.Parse(cb); u.Query().Get("issuer") == "" {
				t.Fatal("simulator callback has no issuer parameter")
			}
			res, body := b.Get(withQuery(t, cb, func(q url.Values) { tc.edit(e, q) }))
			if tc.ok {
				if res.StatusCode != http.StatusSeeOther || !setsSession(res) {
					t.Fatalf("want success, got %d", res.StatusCode)
				}
				return
			}
			assertRejected(t, e, res, body)
			if n := e.Sim.Calls("token.authorization_code"); n != 0 {
				t.Errorf("%d token requests after an issuer mismatch", n)
			}
		})
	}
}

// docs/security.md, "Login transaction": return_to is a relative path on this site.
func TestSecurityReturnTo(t *testing.T) {
	t.Parallel()
	tests := []struct{ returnTo, want string }{
		{"/account", "/account"},
		{"/connect?relink=1", "/connect?relink=1"},
		{"//evil.example", "/account"},
		{"//evil.example/account", "/account"},
		{"https://evil.example", "/account"},
		{"https://evil.example/account", "/account"},
		{`/\evil.example`, "/account"},
		{`\\evil.example`, "/account"},
		{"/\t/evil.example", "/account"},
		{"javascript:alert(1)", "/account"},
		{" //evil.example", "/account"},
		{"evil.example", "/account"},
	}
	for _, tc := range tests {
		t.Run(tc.returnTo, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			b := e.Browser()
			res, _ := b.PostForm("/connect", url.Values{"scope": vehicleScopes, "return_to": {tc.returnTo}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST /connect: %d", res.StatusCode)
			}
			res, _ = b.Get(b.Consent(res.Header.Get("Location"), "ann@example.com", nil, true))
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
				t.Errorf("after login: %d %q, want %q", res.StatusCode, res.Header.Get("Location"), tc.want)
			}
		})
	}
}

var attrURLRe = regexp.MustCompile(`<(\w+)\b[^>]*?\b(?:src|href|action|srcset|poster|data)\s*=\s*"([^"]*)"`)

// thirdParty lists the URLs of page that point off this site, except those
// allow accepts.
func thirdParty(e *testenv.Env, page string, allow func(tag, u string) bool) []string {
	self, _ := url.Parse(e.URL)
	var out []string
	for _, m := range attrURLRe.FindAllStringSubmatch(page, -1) {
		tag, v := m[1], strings.ReplaceAll(m[2], "&amp;", "&")
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil {
			out = append(out, v)
			continue
		}
		if u.Host == "" && u.Scheme == "" {
			continue // relative
		}
		if u.Host == self.Host && u.Scheme == self.Scheme {
			continue
		}
		if allow != nil && allow(tag, v) {
			continue
		}
		out = append(out, tag+" "+v)
	}
	if strings.Contains(page, "@import") || regexp.MustCompile(`url\(\s*['"]?(https?:)?//`).MatchString(page) {
		out = append(out, "css import or remote url()")
	}
	return out
}

// docs/security.md, "Login transaction": the callback answers 303; every page sends
// Referrer-Policy and loads nothing from third parties.
func TestSecurityPagesReferrerAndThirdParty(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	type page struct {
		name string
		res  *http.Response
		body string
	}
	var pages []page
	add := func(name string, res *http.Response, body string) { pages = append(pages, page{name, res, body}) }

	res, body := b.Get("/")
	add("landing", res, body)
	res, body = b.Get("/connect")
	add("connect", res, body)
	res, body = b.PostForm("/connect", url.Values{"scope": vehicleScopes})
	add("POST /connect", res, body)
	res, body = b.Get(b.Consent(res.Header.Get("Location"), "ann@example.com", nil, true))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback status %d, want 303", res.StatusCode)
	}
	add("callback", res, body)
	res, body = b.Get("/account")
	if !strings.Contains(body, "data-vin=") {
		t.Error("account page shows no vehicles")
	}
	add("account", res, body)
	csrf := csrfOf(t, body)
	res, body = b.Get("/connect?relink=1")
	add("relink", res, body)
	res, body = b.Get("/account/revoke")
	add("revoke confirm", res, body)
	res, body = b.Get("/no-such-page")
	add("404", res, body)
	res, body = e.Browser().Get("/auth/tesla/callback?code=x&state=y")
	add("callback error", res, body)
	res, body = b.PostForm("/account/revoke", url.Values{"csrf": {csrf}})
	add("revoked", res, body)
	if !strings.Contains(body, e.Sim.RevokeConsentURL()) {
		t.Error("revoked page lacks Tesla's revoke link")
	}
	signIn(t, e, b, "ann@example.com")
	_, body = b.Get("/account")
	res, body = b.PostForm("/logout", url.Values{"csrf": {csrfOf(t, body)}})
	add("signed out", res, body)
	statics := regexp.MustCompile(`href="(/static/[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(statics) < 2 {
		t.Errorf("stylesheet and icon links: %v", statics)
	}
	for _, m := range statics {
		res, body = b.Get(m[1])
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", m[1], res.StatusCode)
		}
		add(m[1], res, body)
	}

	for _, p := range pages {
		if rp := p.res.Header.Get("Referrer-Policy"); rp != "no-referrer" && rp != "same-origin" {
			t.Errorf("%s: Referrer-Policy %q", p.name, rp)
		}
		allow := func(tag, u string) bool {
			return p.name == "revoked" && tag == "a" && strings.HasPrefix(u, e.Sim.RevokeConsentURL()+"?")
		}
		if off := thirdParty(e, p.body, allow); len(off) > 0 {
			t.Errorf("%s loads or links third-party URLs: %v", p.name, off)
		}
	}
}

// docs/security.md, "No secrets in logs, URLs or pages": no token, code, client secret or key in URLs, logs, pages or errors.
func TestSecurityNoSecretLeaks(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	var locations []string
	track := func(res *http.Response) {
		if l := res.Header.Get("Location"); l != "" {
			locations = append(locations, l)
		}
	}
	res, _ := b.PostForm("/connect", url.Values{"scope": vehicleScopes})
	track(res)
	cb := b.Consent(res.Header.Get("Location"), "ann@example.com", nil, true)
	code := mustQuery(t, cb, "code")
	res, _ = b.Get(cb)
	track(res)
	res, body := b.Get("/account")
	track(res)
	if !strings.Contains(body, "data-vin=") || e.Sim.Calls("vehicles") == 0 {
		t.Fatal("account page did not list vehicles")
	}
	res, _ = b.PostForm("/logout", url.Values{"csrf": {csrfOf(t, body)}})
	track(res)
	// Error paths too: a replayed callback and a faulted code exchange.
	res, _ = b.Get(cb)
	track(res)
	res, _ = b.Get(b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true))
	track(res)
	res, _ = b.Get("/account")
	track(res)
	res, body = b.Get("/account/revoke")
	track(res)
	res, _ = b.PostForm("/account/revoke", url.Values{"csrf": {csrfOf(t, body)}})
	track(res)
	for _, f := range []teslasim.Fault{teslasim.FaultIDTokenBadSignature, teslasim.FaultUserinfoSubMismatch} {
		e.Sim.Inject(f, teslasim.FaultOptions{Count: 1})
		res, _ = b.Get(b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true))
		track(res)
		if res.StatusCode < 400 {
			t.Errorf("fault %s: status %d", f, res.StatusCode)
		}
	}

	secrets := e.Sim.Secrets()
	if len(secrets) < 8 || !contains(secrets, code) {
		t.Fatalf("simulator secrets look incomplete (%d, code listed %v): the grep would prove nothing", len(secrets), contains(secrets, code))
	}
	if !strings.Contains(e.Logs.String(), `"path":"/auth/tesla/callback"`) {
		t.Fatal("the service's log was not captured")
	}
	if leaks := e.Leaks(b); len(leaks) > 0 {
		t.Errorf("secrets in logs or pages: %v", leaks)
	}
	all := strings.Join(locations, "\n")
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(all, s) {
			t.Errorf("secret %.8s… in a Location header", s)
		}
	}
	for _, s := range []string{"code=", "access_token", "refresh_token"} {
		if strings.Contains(all, s) {
			t.Errorf("a Location header carries %q: %s", s, all)
		}
	}
}

func mustQuery(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get(name) == "" {
		t.Fatalf("%s has no %s", rawURL, name)
	}
	return u.Query().Get(name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
