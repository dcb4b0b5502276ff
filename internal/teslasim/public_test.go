package teslasim

import (
	"context"
	"net/url"
	"testing"
)

// TestPublicClient models Tesla's open-source apps: PKCE is required, no
// secret is accepted anywhere, and no partner token is issued.
func TestPublicClient(t *testing.T) {
	s := newSim(t, func(c *Config) { c.PublicClient = true; c.ClientSecret = "ignored" })
	if got := s.Config().ClientSecret; got != "" {
		t.Fatalf("public client has secret %q", got)
	}
	for _, v := range s.Secrets() {
		if v == "" {
			t.Fatal("Secrets lists an empty string; every leak check would match")
		}
	}

	// Authorize without PKCE: an error redirect, no code.
	p := defaultParams()
	p.verifier = ""
	loc, err := s.Consent(context.Background(), s.testAuthURL(p), "pub@example.com", []string{"user_data"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("code") != "" || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("authorize without PKCE: %s", loc.Redacted())
	}

	// A code exchange that sends a client_secret (even an empty one) is refused.
	p = defaultParams()
	form := s.codeForm(login(t, s, "pub@example.com", p, []string{"user_data"}), p)
	if r := postForm(t, s.TokenURL(), form); r.status != 401 || r.str("error") != "unauthorized_client" {
		t.Fatalf("exchange with a secret: %d %v", r.status, r.body)
	}

	// Without a secret and with the verifier it works, and so does refresh.
	form = s.codeForm(login(t, s, "pub@example.com", p, []string{"user_data"}), p)
	form.Del("client_secret")
	r := postForm(t, s.TokenURL(), form)
	if r.status != 200 || r.str("refresh_token") == "" {
		t.Fatalf("public exchange: %d %v", r.status, r.body)
	}
	// The verifier is required.
	form2 := s.codeForm(login(t, s, "pub@example.com", p, []string{"user_data"}), p)
	form2.Del("client_secret")
	form2.Del("code_verifier")
	if r := postForm(t, s.TokenURL(), form2); r.status != 400 {
		t.Fatalf("exchange without verifier: %d %v", r.status, r.body)
	}
	withSecret := url.Values{"grant_type": {"refresh_token"}, "client_id": {s.cfg.ClientID},
		"client_secret": {"anything"}, "refresh_token": {r.str("refresh_token")}}
	if r2 := postForm(t, s.TokenURL(), withSecret); r2.status != 401 {
		t.Fatalf("refresh with a secret: %d %v", r2.status, r2.body)
	}
	if r2 := refresh(t, s, r.str("refresh_token")); r2.status != 200 || r2.str("access_token") == "" {
		t.Fatalf("public refresh: %d %v", r2.status, r2.body)
	}

	// No partner token, with or without a secret.
	for _, f := range []url.Values{
		{"grant_type": {"client_credentials"}, "client_id": {s.cfg.ClientID}, "audience": {s.RegionBaseURL("na")}},
		{"grant_type": {"client_credentials"}, "client_id": {s.cfg.ClientID}, "client_secret": {""}, "audience": {s.RegionBaseURL("na")}},
	} {
		if r := postForm(t, s.TokenURL(), f); r.status != 401 || r.str("error") != "unauthorized_client" {
			t.Fatalf("partner token for a public client: %d %v", r.status, r.body)
		}
	}
}
