package teslasim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCountersAndSecrets(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	a := linked(t, s, "wes@example.com")
	b := refresh(t, s, a.str("refresh_token"))
	fleetGet(t, s, "na", "/api/1/vehicles", b.str("access_token"))
	want := map[string]int{"authorize": 2, "token.authorization_code": 1, "token.refresh_token": 1, "vehicles": 1, "token": 2}
	for k, v := range want {
		if got := s.Calls(k); got != v {
			t.Errorf("Calls(%s) = %d, want %d", k, got, v)
		}
	}
	sec := s.Secrets()
	for _, v := range []string{s.cfg.ClientSecret, a.str("access_token"), a.str("refresh_token"), a.str("id_token"),
		b.str("access_token"), b.str("refresh_token"), b.str("id_token")} {
		if !slices.Contains(sec, v) {
			t.Errorf("Secrets lacks a value (len %d)", len(v))
		}
	}
	codes := 0
	for _, v := range sec {
		if strings.HasPrefix(v, "NA_") && len(v) == 3+48 {
			codes++
		}
	}
	if codes != 1 {
		t.Errorf("codes in Secrets = %d", codes)
	}
	s.ResetCalls()
	if s.Calls("authorize") != 0 || len(s.AllCalls()) != 0 {
		t.Error("ResetCalls")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	buf := &lockedWriter{w: &bytes.Buffer{}}
	s := newSim(t, func(c *Config) { c.Logger = newTestLogger(buf) })
	a := linked(t, s, "xia@example.com")
	refresh(t, s, a.str("refresh_token"))
	s.Close()
	logs := buf.String()
	if !strings.Contains(logs, "token.refresh_token") {
		t.Fatalf("logger not used: %q", logs)
	}
	for _, v := range s.Secrets() {
		if strings.Contains(logs, v) {
			t.Errorf("secret of length %d in logs", len(v))
		}
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	jwks := func() []string {
		res, err := http.Get(s.URL() + PathJWKS)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var k struct {
			Keys []struct {
				Kid, Kty, Alg, N, E string
			}
		}
		_ = json.NewDecoder(res.Body).Decode(&k)
		var out []string
		for _, x := range k.Keys {
			if x.Kty != "RSA" || x.Alg != "RS256" || x.N == "" || x.E == "" {
				t.Errorf("bad JWK %+v", x)
			}
			out = append(out, x.Kid)
		}
		return out
	}
	old := jwks()
	a := linked(t, s, "yan@example.com")
	s.RotateKeys(false)
	both := jwks()
	if len(old) != 1 || len(both) != 2 || !slices.Contains(both, old[0]) {
		t.Fatalf("after rotate: %v -> %v", old, both)
	}
	b := linked(t, s, "yan@example.com")
	h, _ := claims(t, b.str("id_token"))
	if h["kid"] == old[0] || !slices.Contains(both, h["kid"].(string)) {
		t.Errorf("new tokens must use the new key: %v", h["kid"])
	}
	if err := verifyID(t, s, b.str("id_token"), "nonce-123"); err != nil {
		t.Errorf("verify after rotation: %v", err)
	}
	s.RotateKeys(true)
	if now := jwks(); len(now) != 1 || slices.Contains(both, now[0]) {
		t.Errorf("drop old: %v", now)
	}
	if err := verifyID(t, s, a.str("id_token"), "nonce-123"); err == nil {
		t.Error("ID token signed by a dropped key still verifies")
	}
	// The sim's own Fleet API still accepts its earlier access tokens.
	if st, _ := fleetGet(t, s, "na", "/api/1/users/me", b.str("access_token")); st != 200 {
		t.Errorf("fleet after rotation: %d", st)
	}
}

func TestAdminHandler(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	adm := httptest.NewServer(s.AdminHandler())
	t.Cleanup(adm.Close)
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, adm.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, _ := do("POST", "/faults", `{"fault":"http_429","count":1,"retry_after_s":7}`); st != 200 {
		t.Fatalf("inject: %d", st)
	}
	if r := refresh(t, s, "x"); r.status != 429 || r.header.Get("Retry-After") != "7" {
		t.Errorf("admin 429: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if st, _ := do("POST", "/faults", `{"fault":"nope"}`); st != 400 {
		t.Errorf("unknown fault: %d", st)
	}
	do("POST", "/faults", `{"fault":"http_500"}`)
	do("DELETE", "/faults", "")
	if r := refresh(t, s, "x"); r.status != 401 {
		t.Errorf("after clear: %d", r.status)
	}
	before := s.Clock().Now()
	if st, _ := do("POST", "/clock/advance", `{"seconds":3600}`); st != 200 || s.Clock().Now().Sub(before) != time.Hour {
		t.Errorf("clock: %d %v", st, s.Clock().Now().Sub(before))
	}
	if st, body := do("POST", "/keys/rotate", ""); st != 200 || strings.Count(body, `"kid"`) != 2 {
		t.Errorf("rotate: %d %s", st, body)
	}
	if st, body := do("GET", "/calls", ""); st != 200 || !strings.Contains(body, `"token.refresh_token":2`) {
		t.Errorf("calls: %d %s", st, body)
	}
	if d := s.DescribeDefaults(); !strings.Contains(d, s.DiscoveryURL()) || !strings.Contains(d, DefaultClientID) {
		t.Errorf("DescribeDefaults = %q", d)
	}
}

// TestAdminRefusesCrossSite: a web page can send a text/plain or form POST
// (no preflight), or any request carrying its own Origin; none of them may
// inject a fault or move the clock.
func TestAdminRefusesCrossSite(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	adm := httptest.NewServer(s.AdminHandler())
	t.Cleanup(adm.Close)
	before := s.Clock().Now()
	for _, tc := range []struct {
		name, ctype string
		hdr         map[string]string
		want        int
	}{
		{"text/plain", "text/plain", nil, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", nil, http.StatusUnsupportedMediaType},
		{"no type", "", nil, http.StatusUnsupportedMediaType},
		{"foreign origin", "application/json", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null origin", "application/json", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch", "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"rebound host", "application/json", map[string]string{"Host": "evil.example:9091", "Origin": "http://evil.example:9091"}, http.StatusForbidden},
		{"same origin", "application/json", map[string]string{"Origin": adm.URL}, http.StatusOK},
	} {
		for _, path := range []string{"/faults", "/clock/advance", "/keys/rotate"} {
			body := `{"fault":"http_500","count":1}`
			if path == "/clock/advance" {
				body = `{"seconds":60}`
			} else if path == "/keys/rotate" {
				body = `{}`
			}
			req, _ := http.NewRequest("POST", adm.URL+path, strings.NewReader(body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			if h := tc.hdr["Host"]; h != "" {
				req.Host = h
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.name, path, res.StatusCode, tc.want)
			}
		}
		if tc.want != http.StatusOK {
			if len(s.ActiveFaults()) != 0 || !s.Clock().Now().Equal(before) {
				t.Fatalf("%s: a refused request changed the simulator", tc.name)
			}
		}
	}
}

func TestHandlerWithoutStart(t *testing.T) {
	t.Parallel()
	s, err := New(Config{RedirectURIs: []string{testRedirect}, SigningKey: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d map[string]any
	_ = json.NewDecoder(res.Body).Decode(&d)
	if d["authorization_endpoint"] != srv.URL+PathAuthorize {
		t.Errorf("authorization_endpoint = %v", d["authorization_endpoint"])
	}
	if c := s.Config(); c.ClientID != DefaultClientID || c.Password != "tesla" || c.Issuer != DefaultIssuer || c.Clock == nil {
		t.Errorf("defaults: %+v", c)
	}
}

// TestDateHeaderFollowsClock: every answer carries the simulator's clock as
// its Date, so a separately running service sees the provider's time move
// when the clock is advanced; a running clock follows real time.
func TestDateHeaderFollowsClock(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	s.Clock().Advance(72 * time.Hour)
	res, err := http.Get(s.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	d, err := http.ParseTime(res.Header.Get("Date"))
	if err != nil || d.Sub(s.Clock().Now()).Abs() > time.Second {
		t.Fatalf("Date %q, clock %v", res.Header.Get("Date"), s.Clock().Now())
	}
	c := NewRunningClock()
	c.Advance(time.Hour)
	if got := time.Until(c.Now()); got < 59*time.Minute || got > 61*time.Minute || c.Offset() != time.Hour {
		t.Fatalf("running clock: %v ahead, offset %v", got, c.Offset())
	}
}
