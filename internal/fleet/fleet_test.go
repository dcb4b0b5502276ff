package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"teslalink/internal/oidc"
)

const (
	testClientID = "client-123"
	testSecret   = "s3cr3t-client-secret"
)

// server is a loopback stand-in for the Fleet API and, for partner tokens, the
// authorization server's discovery and token endpoints.
type server struct {
	srv      *httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{handlers: map[string]http.HandlerFunc{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.handlers[r.URL.Path]
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		if r.URL.Path == "/.well-known/openid-configuration" {
			writeJSON(w, 200, map[string]any{
				"issuer":                                s.srv.URL,
				"authorization_endpoint":                s.srv.URL + "/oauth2/v3/authorize",
				"token_endpoint":                        s.srv.URL + "/oauth2/v3/token",
				"jwks_uri":                              s.srv.URL + "/oauth2/v3/discovery/keys",
				"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	s.handlers[path] = h
	s.mu.Unlock()
}

// auth returns an authorization server client against s; secret "" makes it public.
func (s *server) auth(secret string) *oidc.Client {
	return oidc.New(oidc.Config{
		DiscoveryURL: s.srv.URL + "/.well-known/openid-configuration", ClientID: testClientID, ClientSecret: secret,
		RedirectURL: "https://link.example.test/auth/tesla/callback", HTTPClient: &http.Client{Timeout: 5 * time.Second},
	})
}

// client returns a Fleet API client whose partner tokens come from s.
func (s *server) client() *Client {
	return New(Config{Auth: s.auth(testSecret), HTTPClient: &http.Client{Timeout: 5 * time.Second}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func requireBearer(t *testing.T, r *http.Request, want string) bool {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+want {
		t.Errorf("Authorization = %q", got)
		return false
	}
	return true
}

func formOf(t *testing.T, r *http.Request) url.Values {
	t.Helper()
	if err := r.ParseForm(); err != nil {
		t.Errorf("parse form: %v", err)
	}
	return r.PostForm
}

func TestVehiclesPaginated(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	p.handle("/api/1/vehicles", func(w http.ResponseWriter, r *http.Request) {
		requireBearer(t, r, "at-1")
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		var next any
		if page == 1 {
			next = 2
		}
		writeJSON(w, 200, map[string]any{
			"response": []map[string]any{{
				"id": 1492931337156000 + page, "vehicle_id": 1234567890 + page, "vin": "5YJ3E1EA7KF00000" + strconv.Itoa(page),
				"display_name": "Car " + strconv.Itoa(page), "state": "online", "id_s": "x",
			}},
			"pagination": map[string]any{"previous": nil, "next": next, "current": page, "per_page": 1, "count": 2, "pages": 2},
			"count":      2,
		})
	})
	vs, err := p.client().Vehicles(context.Background(), p.srv.URL+"/", "at-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].ID != 1492931337156001 || vs[1].VIN != "5YJ3E1EA7KF000002" || vs[1].DisplayName != "Car 2" || vs[0].State != "online" || vs[0].VehicleID != 1234567891 {
		t.Errorf("vehicles = %+v", vs)
	}
}

func TestFleetErrorsClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		kind   oidc.Kind
	}{
		{401, `{"error":"invalid_token"}`, oidc.KindReauth},
		{403, `{"error":"Unauthorized missing scopes"}`, oidc.KindForbidden},
		{412, `{"error":"Account must be registered in the current region"}`, oidc.KindNotRegistered},
		{421, `{"error":"user out of region"}`, oidc.KindRegion},
		{429, ``, oidc.KindTransient},
		{503, `oops`, oidc.KindTransient},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			p := newServer(t)
			h := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}
			p.handle("/api/1/vehicles", h)
			p.handle("/api/1/users/region", h)
			c := p.client()
			_, err := c.Vehicles(context.Background(), p.srv.URL, "at-1")
			if oidc.KindOf(err) != tc.kind {
				t.Errorf("Vehicles kind = %v, want %v (%v)", oidc.KindOf(err), tc.kind, err)
			}
			_, _, err = c.UserRegion(context.Background(), p.srv.URL, "at-1")
			if oidc.KindOf(err) != tc.kind {
				t.Errorf("UserRegion kind = %v, want %v (%v)", oidc.KindOf(err), tc.kind, err)
			}
			var e *oidc.Error
			if !errors.As(err, &e) || e.Status != tc.status || e.RetryAfter != 3*time.Second {
				t.Errorf("error = %#v", e)
			}
			if strings.Contains(err.Error(), "at-1") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

// TestTransportErrorIsTransient: a Fleet API that cannot be reached is KindTransient.
func TestTransportErrorIsTransient(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	base := p.srv.URL
	p.srv.Close()
	_, err := p.client().Vehicles(context.Background(), base, "at-1")
	if oidc.KindOf(err) != oidc.KindTransient {
		t.Fatalf("kind = %v (%v)", oidc.KindOf(err), err)
	}
	if _, err := p.client().Vehicles(context.Background(), "not a url", "at-1"); oidc.KindOf(err) != oidc.KindConfig {
		t.Fatalf("bad base URL: kind = %v (%v)", oidc.KindOf(err), err)
	}
}

func TestUserRegion(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	p.handle("/api/1/users/region", func(w http.ResponseWriter, r *http.Request) {
		requireBearer(t, r, "at-1")
		writeJSON(w, 200, map[string]any{"response": map[string]any{"region": "EU", "fleet_api_base_url": "https://fleet-api.prd.eu.vn.cloud.tesla.com/"}})
	})
	region, base, err := p.client().UserRegion(context.Background(), p.srv.URL, "at-1")
	if err != nil {
		t.Fatal(err)
	}
	if region != "eu" || base != "https://fleet-api.prd.eu.vn.cloud.tesla.com" {
		t.Errorf("region = %q, base = %q", region, base)
	}
}

func TestRegionBaseURL(t *testing.T) {
	t.Parallel()
	c := New(Config{RegionBaseURLs: map[string]string{"EU": "http://127.0.0.1:9/eu/"}})
	if u, ok := c.RegionBaseURL("NA"); !ok || u != "https://fleet-api.prd.na.vn.cloud.tesla.com" {
		t.Errorf("na = %q %v", u, ok)
	}
	if u, _ := c.RegionBaseURL("eu"); u != "http://127.0.0.1:9/eu" {
		t.Errorf("eu override = %q", u)
	}
	if u, _ := c.RegionBaseURL("cn"); u != "https://fleet-api.prd.cn.vn.cloud.tesla.cn" {
		t.Errorf("cn = %q", u)
	}
	if _, ok := c.RegionBaseURL("mars"); ok {
		t.Error("unknown region found")
	}
	// The authorization server's default audience is the NA base URL.
	if u, _ := New(Config{}).RegionBaseURL("na"); u != oidc.New(oidc.Config{}).Audience() {
		t.Errorf("na = %q, default audience %q", u, oidc.New(oidc.Config{}).Audience())
	}
}

// TestUsable: the Fleet API is asked with Tesla's tokens and with configured Fleet URLs
// (the simulator), never with a standard provider's tokens at Tesla's own URLs.
func TestUsable(t *testing.T) {
	t.Parallel()
	standard := oidc.New(oidc.Config{DiscoveryURL: "https://idp.example.org/.well-known/openid-configuration"})
	if New(Config{Auth: standard}).Usable() {
		t.Error("standard provider with Tesla's Fleet URLs asks Tesla for the region")
	}
	if New(Config{}).Usable() {
		t.Error("no authorization server and Tesla's Fleet URLs: usable")
	}
	if !New(Config{Auth: standard, RegionBaseURLs: map[string]string{"na": "http://127.0.0.1:9/na"}}).Usable() {
		t.Error("configured Fleet URLs (simulator) must keep the region lookup")
	}
	if !New(Config{Auth: oidc.New(oidc.Config{})}).Usable() {
		t.Error("Tesla must keep the region lookup")
	}
}

func TestRegisterPartner(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	var tokenHits atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		tokenHits.Add(1)
		f := formOf(t, r)
		if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != testClientID || f.Get("client_secret") != testSecret ||
			f.Get("audience") != p.srv.URL || f.Get("scope") != oidc.DefaultPartnerScopes {
			t.Errorf("partner token form = %v", f)
		}
		writeJSON(w, 200, map[string]any{"access_token": "partner-at", "expires_in": 28800, "token_type": "Bearer"})
	})
	p.handle("/api/1/partner_accounts", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("method %s, content type %q", r.Method, r.Header.Get("Content-Type"))
		}
		requireBearer(t, r, "partner-at")
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["domain"] != "link.example.test" {
			t.Errorf("body = %v", body)
		}
		writeJSON(w, 200, map[string]any{"response": map[string]any{"domain": body["domain"]}})
	})
	c := p.client()
	out, err := c.RegisterPartner(context.Background(), p.srv.URL+"/", "link.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"domain":"link.example.test"`) {
		t.Errorf("answer = %s", out)
	}
	if tokenHits.Load() != 1 {
		t.Errorf("partner token requests = %d, want 1", tokenHits.Load())
	}
	if _, err := c.RegisterPartner(context.Background(), p.srv.URL, "https://evil/"); oidc.KindOf(err) != oidc.KindConfig {
		t.Errorf("bad domain: %v", err)
	}
	if _, err := New(Config{}).RegisterPartner(context.Background(), p.srv.URL, "link.example.test"); oidc.KindOf(err) != oidc.KindConfig {
		t.Errorf("no authorization server: %v", err)
	}
	if tokenHits.Load() != 1 {
		t.Errorf("partner token requests = %d after refused calls, want 1", tokenHits.Load())
	}
}

func TestUserRegionRefusesDowngrade(t *testing.T) {
	t.Parallel()
	c := New(Config{})
	p := newServer(t)
	p.handle("/api/1/users/region", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"response": map[string]any{"region": "na", "fleet_api_base_url": "http://plain.example"}})
	})
	// The test server is plain HTTP, so a plain-HTTP base URL is allowed here...
	if _, base, err := c.UserRegion(context.Background(), p.srv.URL, "at"); err != nil || base != "http://plain.example" {
		t.Fatalf("plain base from plain server: %q %v", base, err)
	}
	// ...but not from an HTTPS one.
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"response": map[string]any{"region": "na", "fleet_api_base_url": "http://plain.example"}})
	}))
	defer ts.Close()
	c2 := New(Config{HTTPClient: ts.Client()})
	if _, _, err := c2.UserRegion(context.Background(), ts.URL, "at"); oidc.KindOf(err) != oidc.KindInvalid {
		t.Fatalf("downgrade accepted: %v", err)
	}
}

// TestRegisterPartnerPublicClient: a client without a secret never asks for a
// partner token (Tesla issues none to public clients) and says why.
func TestRegisterPartnerPublicClient(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	var tokenHits atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		tokenHits.Add(1)
		writeJSON(w, 200, map[string]any{"access_token": "partner-at", "expires_in": 28800, "token_type": "Bearer"})
	})
	auth := p.auth("")
	if !auth.PublicClient() {
		t.Fatal("a client without a secret is not public")
	}
	_, err := New(Config{Auth: auth}).RegisterPartner(context.Background(), p.srv.URL, "link.example.test")
	if !errors.Is(err, oidc.ErrPublicClient) || oidc.KindOf(err) != oidc.KindConfig || tokenHits.Load() != 0 {
		t.Fatalf("err = %v, token requests = %d", err, tokenHits.Load())
	}
}

// TestErrorsCarryNoSecrets: a Fleet API or token endpoint that echoes the request back
// in its error never gets a token or secret into the error text.
func TestErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	p := newServer(t)
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"` + r.PostForm.Encode() + `"}`))
	})
	echo := func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"missing scopes for ` + r.Header.Get("Authorization") + b.String() + `"}`))
	}
	p.handle("/api/1/vehicles", echo)
	p.handle("/api/1/users/region", echo)
	c := p.client()
	var errs []error
	_, err := c.Vehicles(context.Background(), p.srv.URL, "at-secret")
	errs = append(errs, err)
	_, _, err = c.UserRegion(context.Background(), p.srv.URL, "at-secret")
	errs = append(errs, err)
	_, err = c.RegisterPartner(context.Background(), p.srv.URL, "example.com")
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil {
			t.Fatal("expected an error")
		}
		for _, s := range []string{"at-secret", testSecret} {
			if strings.Contains(e.Error(), s) {
				t.Errorf("error %q contains %q", e, s)
			}
		}
	}
}

// TestOwnHTTPClient: without Config.HTTPClient (or with http.DefaultClient) the Fleet
// API is called with oidc.NewHTTPClient: timeouts, and no redirect to another host, so
// an access token never travels elsewhere.
func TestOwnHTTPClient(t *testing.T) {
	t.Parallel()
	for _, hc := range []*http.Client{nil, http.DefaultClient} {
		c := New(Config{HTTPClient: hc})
		if c.http == http.DefaultClient || c.http == nil || c.http.Timeout != 10*time.Second {
			t.Fatalf("client = %#v", c.http)
		}
	}
	other := newServer(t)
	var otherHits atomic.Int32
	other.handle("/steal", func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) })
	p := newServer(t)
	p.handle("/api/1/vehicles", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/steal", http.StatusTemporaryRedirect)
	})
	if _, err := New(Config{}).Vehicles(context.Background(), p.srv.URL, "at-1"); err == nil {
		t.Fatal("redirected vehicle list succeeded")
	}
	if otherHits.Load() != 0 {
		t.Fatal("the Fleet API call followed a cross-host redirect")
	}
}
