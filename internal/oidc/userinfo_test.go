package oidc

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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

// TestPartnerToken: the client-credentials grant names the client, the partner scopes
// and the Fleet API audience, and a 503 is retried.
func TestPartnerToken(t *testing.T) {
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
			f.Get("audience") != "https://fleet.example" || f.Get("scope") != DefaultPartnerScopes {
			t.Errorf("partner token form = %v", f)
		}
		writeJSON(w, 200, map[string]any{"access_token": "partner-at", "expires_in": 28800, "token_type": "Bearer"})
	})
	c, _, _ := newClient(t, p, nil)
	tok, err := c.PartnerToken(context.Background(), "https://fleet.example")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "partner-at" {
		t.Errorf("access token = %q", tok.AccessToken)
	}
	if tokenHits.Load() != 2 {
		t.Errorf("partner token attempts = %d, want 2 (one 503 retried)", tokenHits.Load())
	}
}

// TestPartnerTokenPublicClient: a client without a secret never asks for a partner
// token (Tesla issues none to public clients) and says why.
func TestPartnerTokenPublicClient(t *testing.T) {
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
	_, err := c.PartnerToken(context.Background(), "https://fleet.example")
	if !errors.Is(err, ErrPublicClient) || KindOf(err) != KindConfig || tokenHits.Load() != 0 {
		t.Fatalf("err = %v, token requests = %d", err, tokenHits.Load())
	}
}

// TestResourceErrorsClassified: the userinfo endpoint's statuses map to Kinds like the
// Fleet API's (internal/fleet uses the same classification).
func TestResourceErrorsClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		kind   Kind
	}{
		{401, `{"error":"invalid_token"}`, KindReauth},
		{403, `{"error":"Unauthorized missing scopes"}`, KindForbidden},
		{412, `{"error":"Account must be registered in the current region"}`, KindNotRegistered},
		{421, `{"error":"user out of region"}`, KindRegion},
		{429, `{"error":"invalid_request"}`, KindTransient},
		{503, `oops`, KindTransient},
		{418, `{"error":"what is this"}`, KindUnknown},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c, _, _ := newClient(t, p, nil)
			_, err := c.UserInfo(context.Background(), "at-1", "owner-sub-1")
			var e *Error
			if KindOf(err) != tc.kind || !errors.As(err, &e) || e.Status != tc.status || e.RetryAfter != 3*time.Second {
				t.Errorf("kind = %v, want %v (%v)", KindOf(err), tc.kind, err)
			}
			if strings.Contains(err.Error(), "at-1") || strings.Contains(err.Error(), "what is this") {
				t.Errorf("error quotes the request or the body: %v", err)
			}
		})
	}
}

// TestDefaultAudience: the code exchange's audience is Config.Audience, else
// Config.DefaultAudience (the configured NA Fleet API URL), else Tesla's NA Fleet API.
func TestDefaultAudience(t *testing.T) {
	t.Parallel()
	if a := New(Config{}).Audience(); a != "https://fleet-api.prd.na.vn.cloud.tesla.com" {
		t.Errorf("default audience = %q", a)
	}
	if a := New(Config{DefaultAudience: "http://127.0.0.1:9/na/"}).Audience(); a != "http://127.0.0.1:9/na" {
		t.Errorf("default audience override = %q", a)
	}
	c := New(Config{Audience: "https://api.example.org/", DefaultAudience: "http://127.0.0.1:9/na"})
	if c.Audience() != "https://api.example.org/" {
		t.Errorf("explicit audience = %q", c.Audience())
	}
	if c.SendsAudience() == New(Config{DiscoveryURL: "https://idp.example.org/.well-known/openid-configuration", DefaultAudience: "http://127.0.0.1:9/na"}).SendsAudience() {
		t.Error("only an explicit audience is sent to a standard provider")
	}
}
