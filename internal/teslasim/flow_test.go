package teslasim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

func TestDiscoveryShape(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	res, err := http.Get(s.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != DefaultIssuer || strings.HasPrefix(DefaultIssuer, s.URL()) {
		t.Errorf("issuer = %v, want %s (not the served URL)", d["issuer"], DefaultIssuer)
	}
	if _, ok := d["revocation_endpoint"]; ok {
		t.Error("discovery must not have revocation_endpoint")
	}
	want := map[string]string{
		"authorization_endpoint": s.URL() + "/oauth2/v3/authorize",
		"token_endpoint":         s.URL() + "/oauth2/v3/token",
		"jwks_uri":               s.URL() + "/oauth2/v3/discovery/thirdparty/keys",
		"userinfo_endpoint":      s.URL() + "/oauth2/v3/userinfo",
		"end_session_endpoint":   s.URL() + "/oauth2/v3/logout",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	if s.TokenURL() == d["token_endpoint"] {
		t.Error("TokenURL should differ from the discovered token_endpoint, as Tesla's fleet-auth host does")
	}
	for k, v := range map[string]string{"response_types_supported": "code", "id_token_signing_alg_values_supported": "RS256", "code_challenge_methods_supported": "S256"} {
		if l, _ := d[k].([]any); len(l) != 1 || l[0] != v {
			t.Errorf("%s = %v", k, d[k])
		}
	}
	// go-oidc's NewProvider refuses Tesla's metadata because of the issuer.
	if _, err := gooidc.NewProvider(context.Background(), strings.TrimSuffix(s.DiscoveryURL(), "/.well-known/openid-configuration")); err == nil {
		t.Error("go-oidc NewProvider accepted a mismatched issuer")
	}
	if s.Calls("discovery") != 2 {
		t.Errorf("discovery calls = %d, want 2", s.Calls("discovery"))
	}
}

func TestIDTokenVerifiesWithGoOIDC(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	r := linked(t, s, "alice@example.com")
	ctx := gooidc.ClientContext(context.Background(), http.DefaultClient)
	keys := gooidc.NewRemoteKeySet(ctx, s.URL()+PathJWKS)
	v := gooidc.NewVerifier(s.IDTokenIssuer(), keys, &gooidc.Config{ClientID: s.cfg.ClientID, Now: s.clock.Now})
	idt, err := v.Verify(ctx, r.str("id_token"))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if idt.Subject != s.OwnerSub("alice@example.com") || idt.Nonce != "nonce-123" {
		t.Errorf("sub=%s nonce=%s", idt.Subject, idt.Nonce)
	}
	var c map[string]any
	_ = idt.Claims(&c)
	if _, ok := c["email"]; ok {
		t.Error("ID token must not carry email")
	}
	if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(28800) {
		t.Errorf("token response: %v %v", r.body["token_type"], r.body["expires_in"])
	}
	_, at := claims(t, r.str("access_token"))
	if at["ou_code"] != "NA" || at["sub"] != idt.Subject {
		t.Errorf("access token claims: %v", at)
	}
	aud, _ := at["aud"].([]any)
	if len(aud) != 3 || aud[0] != s.RegionBaseURL("na") {
		t.Errorf("aud = %v", at["aud"])
	}
	if !strings.HasPrefix(r.str("refresh_token"), "NA_") {
		t.Error("refresh token lacks region prefix")
	}
	// userinfo: sub, email, name.
	req, _ := http.NewRequest(http.MethodGet, s.URL()+PathUserinfo, nil)
	req.Header.Set("Authorization", "Bearer "+r.str("access_token"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ui map[string]any
	_ = json.NewDecoder(res.Body).Decode(&ui)
	if ui["sub"] != idt.Subject || ui["email"] != "alice@example.com" || ui["name"] == "" {
		t.Errorf("userinfo = %v", ui)
	}
}

func TestAuthorizeValidation(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(mod func(url.Values)) *http.Response {
		u, _ := url.Parse(s.testAuthURL(defaultParams()))
		q := u.Query()
		mod(q)
		u.RawQuery = q.Encode()
		res, err := noFollow.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for name, mod := range map[string]func(url.Values){
		"bad client":          func(q url.Values) { q.Set("client_id", "evil") },
		"no client":           func(q url.Values) { q.Del("client_id") },
		"bad redirect":        func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"redirect prefix":     func(q url.Values) { q.Set("redirect_uri", testRedirect+"/x") },
		"redirect with slash": func(q url.Values) { q.Set("redirect_uri", testRedirect+"/") },
	} {
		res := get(mod)
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("%s: status %d location %q, want 400 without redirect", name, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for name, c := range map[string]struct {
		mod  func(url.Values)
		want string
	}{
		"response_type":  {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		"no state":       {func(q url.Values) { q.Del("state") }, "invalid_request"},
		"plain pkce":     {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		"unknown scope":  {func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope"},
		"missing openid": {func(q url.Values) { q.Set("scope", "user_data") }, "invalid_scope"},
	} {
		res := get(c.mod)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), testRedirect) || loc.Query().Get("error") != c.want {
			t.Errorf("%s: %d %q, want redirect with error=%s", name, res.StatusCode, loc, c.want)
		}
	}
	// The page itself: the form fields the issue names.
	res, err := http.Get(s.testAuthURL(defaultParams()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	for _, want := range []string{
		`<form method="post"`, `name="email"`, `name="password" autocomplete="current-password"`,
		`type="checkbox" name="scope" value="user_data" checked`, `type="hidden" name="scope" value="openid"`,
		`value="openid" checked disabled`, `name="decision" value="allow"`, `name="decision" value="deny"`, "SIMULATOR",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("page has JavaScript")
	}
}

func TestConsentNarrowsScopesAndDeny(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := defaultParams()
	r := exchange(t, s, login(t, s, "bob@example.com", p, []string{"user_data"}), p)
	if r.status != 200 || r.str("scope") != "openid offline_access user_data" {
		t.Fatalf("scope = %q (%d)", r.str("scope"), r.status)
	}
	_, at := claims(t, r.str("access_token"))
	if scp, _ := at["scp"].([]any); len(scp) != 3 {
		t.Errorf("scp = %v", at["scp"])
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/vehicles", r.str("access_token")); st != http.StatusForbidden {
		t.Errorf("vehicles without vehicle_device_data: %d, want 403", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", r.str("access_token")); st != http.StatusOK {
		t.Errorf("users/me: %d", st)
	}

	loc, err := s.Consent(context.Background(), s.testAuthURL(p), "bob@example.com", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != p.state || loc.Query().Get("code") != "" {
		t.Errorf("deny redirect = %s", loc)
	}
}

func TestCallbackParameters(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := defaultParams()
	loc, err := s.Consent(context.Background(), s.testAuthURL(p), "carol+eu@example.com", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), testRedirect+"?") || q.Get("state") != p.state ||
		q.Get("issuer") != s.CallbackIssuer() || q.Get("locale") != "en-US" || !strings.HasPrefix(q.Get("code"), "EU_") {
		t.Errorf("callback = %s", loc.Redacted())
	}
	if s.CallbackIssuer() == s.IDTokenIssuer() {
		t.Error("callback issuer must differ from the ID token issuer")
	}
	r := exchange(t, s, q.Get("code"), p)
	_, at := claims(t, r.str("access_token"))
	if at["ou_code"] != "EU" || !strings.HasPrefix(r.str("refresh_token"), "EU_") {
		t.Errorf("EU owner: ou_code %v", at["ou_code"])
	}
}

func TestWrongPasswordRerenders(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	_, err := s.ConsentWithPassword(context.Background(), s.testAuthURL(defaultParams()), "dan@example.com", "nope", nil, true)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: err = %v, want a re-rendered page (401)", err)
	}
}

func TestRequireRequestedScopes(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := defaultParams()
	p.extra = url.Values{"require_requested_scopes": {"true"}, "prompt_missing_scopes": {"true"}}
	// A browser cannot uncheck: everything is granted.
	r := exchange(t, s, login(t, s, "erin@example.com", p, nil), p)
	if r.str("scope") != "openid offline_access user_data vehicle_device_data" {
		t.Errorf("scope = %q", r.str("scope"))
	}
	// A forged post that leaves a scope out is an error.
	form := url.Values{
		"authz": {strings.SplitN(s.testAuthURL(p), "?", 2)[1]}, "email": {"erin@example.com"},
		"password": {"tesla"}, "scope": {"openid", "offline_access", "user_data"}, "decision": {"allow"},
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.PostForm(s.AuthorizeURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" {
		t.Errorf("partial grant with require_requested_scopes: %s", loc.Redacted())
	}
}

func TestCodeSingleUseAndExpiry(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := defaultParams()
	code := login(t, s, "fay@example.com", p, nil)
	if r := exchange(t, s, code, p); r.status != 200 {
		t.Fatalf("first use: %d", r.status)
	}
	if r := exchange(t, s, code, p); r.status != 400 || r.str("error") != "invalid_auth_code" || r.str("referenceID") == "" {
		t.Errorf("reuse: %d %v", r.status, r.body)
	}
	code = login(t, s, "fay@example.com", p, nil)
	s.Clock().Advance(10*time.Minute + time.Second)
	if r := exchange(t, s, code, p); r.status != 400 || r.str("error") != "invalid_auth_code" {
		t.Errorf("expired code: %d %v", r.status, r.body)
	}
	code = login(t, s, "fay@example.com", p, nil)
	s.Clock().Advance(9 * time.Minute)
	if r := exchange(t, s, code, p); r.status != 200 {
		t.Errorf("code within 10 minutes: %d %v", r.status, r.body)
	}
}

func TestTokenRequestChecks(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := defaultParams()
	cases := map[string]struct {
		mod    func(url.Values)
		status int
		err    string
	}{
		"pkce mismatch":    {func(f url.Values) { f.Set("code_verifier", "wrong-"+strings.Repeat("y", 50)) }, 400, "invalid_grant"},
		"pkce missing":     {func(f url.Values) { f.Del("code_verifier") }, 400, "invalid_request"},
		"wrong secret":     {func(f url.Values) { f.Set("client_secret", "guess") }, 401, "unauthorized_client"},
		"missing secret":   {func(f url.Values) { f.Del("client_secret") }, 401, "unauthorized_client"},
		"wrong client":     {func(f url.Values) { f.Set("client_id", "other") }, 401, "unauthorized_client"},
		"unknown audience": {func(f url.Values) { f.Set("audience", "https://fleet-api.prd.na.vn.cloud.tesla.com") }, 400, "invalid_request"},
		"missing audience": {func(f url.Values) { f.Del("audience") }, 400, "invalid_request"},
		"redirect differs": {func(f url.Values) { f.Set("redirect_uri", testRedirect+"?x=1") }, 400, "invalid_redirect_url"},
	}
	for name, c := range cases {
		form := s.codeForm(login(t, s, "gus@example.com", p, nil), p)
		c.mod(form)
		r := postForm(t, s.TokenURL(), form)
		if r.status != c.status || r.str("error") != c.err || r.str("error_description") == "" {
			t.Errorf("%s: %d %v, want %d %s", name, r.status, r.body, c.status, c.err)
		}
	}
	// HTTP Basic client authentication works too; the discovered endpoint too.
	form := s.codeForm(login(t, s, "gus@example.com", p, nil), p)
	form.Del("client_secret")
	req, _ := http.NewRequest(http.MethodPost, s.URL()+PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.cfg.ClientID, s.cfg.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("basic auth: %d", res.StatusCode)
	}
	// A client without PKCE must not send a verifier.
	p2 := defaultParams()
	p2.verifier = ""
	form = s.codeForm(login(t, s, "gus@example.com", p2, nil), p2)
	if r := postForm(t, s.TokenURL(), form); r.status != 200 {
		t.Errorf("no PKCE: %d %v", r.status, r.body)
	}
	form = s.codeForm(login(t, s, "gus@example.com", p2, nil), p2)
	form.Set("code_verifier", p.verifier)
	if r := postForm(t, s.TokenURL(), form); r.status != 400 {
		t.Errorf("verifier without challenge: %d", r.status)
	}
	if r := postForm(t, s.TokenURL(), url.Values{"grant_type": {"password"}}); r.str("error") != "unsupported_grant_type" {
		t.Errorf("password grant: %v", r.body)
	}
}
