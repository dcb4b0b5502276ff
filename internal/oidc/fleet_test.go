package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func requireBearer(t *testing.T, r *http.Request, want string) bool {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+want {
		t.Errorf("Authorization = %q", got)
		return false
	}
	return true
}

func TestUserInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sub     string
		wantSub string
		wantErr error
	}{
		{"match", "owner-sub-1", "owner-sub-1", nil},
		{"mismatch", "someone-else", "owner-sub-1", ErrSubMismatch},
		{"missing sub", "", "owner-sub-1", ErrSubMismatch},
		{"empty expected", "", "", ErrSubMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) {
				requireBearer(t, r, "at-1")
				writeJSON(w, 200, map[string]any{"sub": tc.sub, "email": "o@example.com", "name": "Owner"})
			})
			c, _, _ := newClient(t, p, nil)
			ui, err := c.UserInfo(context.Background(), "at-1", tc.wantSub)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || KindOf(err) != KindInvalid {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ui.Subject != "owner-sub-1" || ui.Email != "o@example.com" || ui.Name != "Owner" {
				t.Errorf("userinfo = %+v", ui)
			}
		})
	}
}

func TestUserInfoUnauthorized(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, map[string]any{"error": "invalid_token"})
	})
	c, _, _ := newClient(t, p, nil)
	_, err := c.UserInfo(context.Background(), "at-1", "owner-sub-1")
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_token" {
		t.Fatalf("err = %v", err)
	}
}

func TestVehiclesPaginated(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
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
	c, _, _ := newClient(t, p, nil)
	vs, err := c.Vehicles(context.Background(), p.srv.URL+"/", "at-1")
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
		kind   Kind
	}{
		{403, `{"error":"Unauthorized missing scopes"}`, KindForbidden},
		{412, `{"error":"Account must be registered in the current region"}`, KindNotRegistered},
		{421, `{"error":"user out of region"}`, KindRegion},
		{429, ``, KindTransient},
		{503, `oops`, KindTransient},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			h := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}
			p.handle("/api/1/vehicles", h)
			p.handle("/api/1/users/region", h)
			c, _, _ := newClient(t, p, nil)
			_, err := c.Vehicles(context.Background(), p.srv.URL, "at-1")
			if KindOf(err) != tc.kind {
				t.Errorf("Vehicles kind = %v, want %v (%v)", KindOf(err), tc.kind, err)
			}
			_, _, err = c.UserRegion(context.Background(), p.srv.URL, "at-1")
			if KindOf(err) != tc.kind {
				t.Errorf("UserRegion kind = %v, want %v (%v)", KindOf(err), tc.kind, err)
			}
			var e *Error
			if errors.As(err, &e) && e.Status != tc.status {
				t.Errorf("status = %d", e.Status)
			}
			if strings.Contains(err.Error(), "at-1") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestUserRegion(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.handle("/api/1/users/region", func(w http.ResponseWriter, r *http.Request) {
		requireBearer(t, r, "at-1")
		writeJSON(w, 200, map[string]any{"response": map[string]any{"region": "EU", "fleet_api_base_url": "https://fleet-api.prd.eu.vn.cloud.tesla.com/"}})
	})
	c, _, _ := newClient(t, p, nil)
	region, base, err := c.UserRegion(context.Background(), p.srv.URL, "at-1")
	if err != nil {
		t.Fatal(err)
	}
	if region != "eu" || base != "https://fleet-api.prd.eu.vn.cloud.tesla.com" {
		t.Errorf("region = %q, base = %q", region, base)
	}
}

func TestRegionBaseURL(t *testing.T) {
	t.Parallel()
	c := New(Config{RegionBaseURLs: map[string]string{"eu": "http://127.0.0.1:9/eu/"}})
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
	if c.Audience() != "https://fleet-api.prd.na.vn.cloud.tesla.com" {
		t.Errorf("default audience = %q", c.Audience())
	}
}

func TestRegisterPartner(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var tokenHits atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		f := formOf(t, r)
		if tokenHits.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != testClientID || f.Get("client_secret") != testSecret ||
			f.Get("audience") != p.srv.URL || f.Get("scope") != DefaultPartnerScopes {
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
	c, _, _ := newClient(t, p, nil)
	out, err := c.RegisterPartner(context.Background(), p.srv.URL+"/", "link.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"domain":"link.example.test"`) {
		t.Errorf("answer = %s", out)
	}
	if tokenHits.Load() != 2 {
		t.Errorf("partner token attempts = %d, want 2 (one 503 retried)", tokenHits.Load())
	}
	if _, err := c.RegisterPartner(context.Background(), p.srv.URL, "https://evil/"); KindOf(err) != KindConfig {
		t.Errorf("bad domain: %v", err)
	}
}

func TestUserRegionRefusesDowngrade(t *testing.T) {
	t.Parallel()
	c := New(Config{})
	p := newProvider(t)
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
	if _, _, err := c2.UserRegion(context.Background(), ts.URL, "at"); KindOf(err) != KindInvalid {
		t.Fatalf("downgrade accepted: %v", err)
	}
}

// TestRegisterPartnerPublicClient: a client without a secret never asks for a
// partner token (Tesla issues none to public clients) and says why.
func TestRegisterPartnerPublicClient(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	var tokenHits atomic.Int32
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		tokenHits.Add(1)
		writeJSON(w, 200, map[string]any{"access_token": "partner-at", "expires_in": 28800, "token_type": "Bearer"})
	})
	c, _, _ := newClient(t, p, func(cfg *Config) { cfg.ClientSecret = "" })
	if !c.PublicClient() {
		t.Fatal("a client without a secret is not public")
	}
	_, err := c.RegisterPartner(context.Background(), p.srv.URL, "link.example.test")
	if !errors.Is(err, ErrPublicClient) || KindOf(err) != KindConfig || tokenHits.Load() != 0 {
		t.Fatalf("err = %v, token requests = %d", err, tokenHits.Load())
	}
}
