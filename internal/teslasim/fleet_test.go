package teslasim

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFleetUserEndpoints(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "Mia@Example.com")
	at := a.str("access_token")

	st, me := fleetGet(t, s, "na", "/api/1/users/me", at)
	resp, _ := me["response"].(map[string]any)
	if st != 200 || resp["email"] != "mia@example.com" || resp["full_name"] == "" {
		t.Errorf("users/me: %d %v", st, me)
	}
	st, reg := fleetGet(t, s, "na", "/api/1/users/region", at)
	resp, _ = reg["response"].(map[string]any)
	if st != 200 || resp["region"] != "na" || resp["fleet_api_base_url"] != s.RegionBaseURL("na") {
		t.Errorf("users/region: %d %v", st, reg)
	}
	// users/region answers on any regional base, the rest 421.
	if st, _ := fleetGet(t, s, "eu", "/api/1/users/region", at); st != 200 {
		t.Errorf("users/region on eu: %d", st)
	}
	if st, body := fleetGet(t, s, "eu", "/api/1/users/me", at); st != http.StatusMisdirectedRequest ||
		!strings.Contains(body["error"].(string), s.RegionBaseURL("na")) {
		t.Errorf("wrong region: %d %v", st, body)
	}
	st, vs := fleetGet(t, s, "na", "/api/1/vehicles", at)
	list, _ := vs["response"].([]any)
	if st != 200 || len(list) < 1 || len(list) > 3 || vs["count"] != float64(len(list)) {
		t.Fatalf("vehicles: %d %v", st, vs)
	}
	v0, _ := list[0].(map[string]any)
	if vin, _ := v0["vin"].(string); len(vin) != 17 || v0["display_name"] == "" || v0["state"] == "" || v0["id"] == nil {
		t.Errorf("vehicle = %v", v0)
	}
	// Deterministic per owner.
	if a, b := seedVehicles(s.OwnerSub("mia@example.com")), seedVehicles(s.OwnerSub("mia@example.com")); a[0] != b[0] {
		t.Error("seeded vehicles not deterministic")
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", ""); st != 401 {
		t.Errorf("no token: %d", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", at+"x"); st != 401 {
		t.Errorf("tampered token: %d", st)
	}
	s.Clock().Advance(8 * time.Hour)
	if st, body := fleetGet(t, s, "na", "/api/1/users/me", at); st != 401 || body["error"] != "token expired" {
		t.Errorf("expired: %d %v", st, body)
	}
}

func TestConfiguredOwners(t *testing.T) {
	t.Parallel()
	s := newSim(t, func(c *Config) {
		c.Owners = []Owner{{Email: "nia@example.com", Name: "Nia N", Sub: "sub-nia", Region: "eu",
			Vehicles: []Vehicle{{ID: 1, VehicleID: 2, VIN: "5YJ3E1EA7KF000001", DisplayName: "Zappy", State: "online"}}}}
	})
	if s.OwnerSub("NIA@example.com") != "sub-nia" {
		t.Fatal("configured sub not used")
	}
	if s.OwnerSub("x@example.com") != deriveSub("x@example.com") || s.OwnerSub("x@example.com") == s.OwnerSub("y@example.com") {
		t.Error("derived subs not stable/distinct")
	}
	p := defaultParams()
	code := login(t, s, "nia@example.com", p, []string{"vehicle_device_data"})
	if !strings.HasPrefix(code, "EU_") {
		t.Errorf("code prefix: %s", code[:3])
	}
	r := exchange(t, s, code, p)
	st, vs := fleetGet(t, s, "eu", "/api/1/vehicles", r.str("access_token"))
	if list, _ := vs["response"].([]any); st != 200 || len(list) != 1 || list[0].(map[string]any)["display_name"] != "Zappy" {
		t.Errorf("vehicles: %d %v", st, vs)
	}
	if _, err := New(Config{Owners: []Owner{{Email: "a@b", Region: "mars"}}}); err == nil {
		t.Error("unknown region accepted")
	}
}

func partnerToken(t *testing.T, s *Sim, region string) tokenResp {
	t.Helper()
	return postForm(t, s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.cfg.ClientID}, "client_secret": {s.cfg.ClientSecret},
		"audience": {s.RegionBaseURL(region)}, "scope": {"openid user_data vehicle_device_data"},
	})
}

func registerDomain(t *testing.T, s *Sim, region, at, domain string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.RegionBaseURL(region)+"/api/1/partner_accounts",
		strings.NewReader(`{"domain":"`+domain+`"}`))
	req.Header.Set("Authorization", "Bearer "+at)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestPartnerRegistration(t *testing.T) {
	t.Parallel()
	s := newSim(t, func(c *Config) { c.RequirePartnerRegistration = true })
	user := linked(t, s, "oli@example.com").str("access_token")
	if st, body := fleetGet(t, s, "na", "/api/1/users/me", user); st != http.StatusPreconditionFailed {
		t.Errorf("before registration: %d %v", st, body)
	}
	pt := partnerToken(t, s, "na")
	if pt.status != 200 || pt.str("refresh_token") != "" || pt.str("id_token") != "" {
		t.Fatalf("partner token: %d %v", pt.status, pt.body)
	}
	if r := postForm(t, s.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {s.cfg.ClientID},
		"client_secret": {"bad"}, "audience": {s.RegionBaseURL("na")}}); r.status != 401 || r.str("error") != "unauthorized_client" {
		t.Errorf("partner token with bad secret: %d", r.status)
	}
	if st := registerDomain(t, s, "na", user, "app.example.com"); st != 403 {
		t.Errorf("user token registering: %d", st)
	}
	if st := registerDomain(t, s, "eu", pt.str("access_token"), "app.example.com"); st != 421 {
		t.Errorf("na partner token on eu: %d", st)
	}
	if st := registerDomain(t, s, "na", pt.str("access_token"), "https://app.example.com/x"); st != 400 {
		t.Errorf("bad domain: %d", st)
	}
	if st := registerDomain(t, s, "na", pt.str("access_token"), "App.Example.com"); st != 200 {
		t.Fatalf("register: %d", st)
	}
	if got := s.RegisteredDomains("na"); len(got) != 1 || got[0] != "app.example.com" {
		t.Errorf("domains = %v", got)
	}
	if len(s.RegisteredDomains("eu")) != 0 {
		t.Error("eu must stay unregistered")
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", user); st != 200 {
		t.Errorf("after registration: %d", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", pt.str("access_token")); st != 403 {
		t.Errorf("partner token on user endpoint: %d", st)
	}
	if s.Calls("partner_accounts") != 4 || s.Calls("token.client_credentials") != 2 {
		t.Errorf("calls: %v", s.AllCalls())
	}
}

func TestRevokeConsentPage(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "pat@example.com")
	other := linked(t, s, "quin@example.com")
	back := "http://127.0.0.1:8080/account"
	pageURL := s.RevokeConsentURL() + "?" + url.Values{"revoke_client_id": {s.cfg.ClientID}, "back_url": {back}}.Encode()
	res, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `name="password"`) {
		t.Fatalf("revoke page: %d", res.StatusCode)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"revoke_client_id": {s.cfg.ClientID}, "back_url": {back}, "email": {"pat@example.com"}, "password": {"wrong"}}
	res, err = noFollow.PostForm(s.RevokeConsentURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	form.Set("password", "tesla")
	res, err = noFollow.PostForm(s.RevokeConsentURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 302 || res.Header.Get("Location") != back {
		t.Errorf("revoke: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if r := refresh(t, s, a.str("refresh_token")); r.status != 401 || r.str("error") != "login_required" {
		t.Errorf("refresh after revoke: %d", r.status)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", a.str("access_token")); st != 401 {
		t.Errorf("access after revoke: %d", st)
	}
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", other.str("access_token")); st != 200 {
		t.Errorf("other owner affected: %d", st)
	}
	// The Go API has the same effect; a fresh consent works again afterwards.
	s.RevokeConsent(s.OwnerSub("quin@example.com"))
	if r := refresh(t, s, other.str("refresh_token")); r.status != 401 {
		t.Errorf("refresh after RevokeConsent: %d", r.status)
	}
	again := linked(t, s, "quin@example.com")
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", again.str("access_token")); st != 200 {
		t.Errorf("relink: %d", st)
	}
	if s.Calls("revoke_consent") != 3 {
		t.Errorf("revoke_consent calls = %d", s.Calls("revoke_consent"))
	}
	// Unknown client or a non-http back_url: an error page.
	for _, q := range []url.Values{{"revoke_client_id": {"x"}}, {"revoke_client_id": {s.cfg.ClientID}, "back_url": {"javascript:alert(1)"}}} {
		res, err := noFollow.Get(s.RevokeConsentURL() + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("%v: %d", q, res.StatusCode)
		}
	}
}
