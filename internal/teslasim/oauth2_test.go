package teslasim

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestXOAuth2Interop runs the flow the way internal/oidc will: x/oauth2 with
// PKCE, the audience parameter, and the fleet-auth token URL.
func TestXOAuth2Interop(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	conf := &oauth2.Config{
		ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURL: testRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthorizeURL(), TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "offline_access", "user_data", "vehicle_device_data", "vehicle_location"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n1"))
	loc, err := s.Consent(context.Background(), authURL, "zed@example.com", []string{"user_data", "vehicle_device_data"}, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 5 * time.Second})
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("audience", s.RegionBaseURL("na")))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("id_token") == nil || tok.RefreshToken == "" || tok.Extra("scope") != "openid offline_access user_data vehicle_device_data" {
		t.Errorf("token: scope=%v", tok.Extra("scope"))
	}
	if d := time.Until(tok.Expiry); d < 7*time.Hour || d > 9*time.Hour {
		t.Errorf("expiry in %v", d)
	}
	tok.Expiry = time.Now().Add(-time.Minute) // force a refresh
	nt, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if nt.RefreshToken == tok.RefreshToken || nt.AccessToken == tok.AccessToken {
		t.Error("refresh did not rotate")
	}
	if s.Calls("token.refresh_token") != 1 || s.Calls("token.authorization_code") != 1 {
		t.Errorf("calls: %v", s.AllCalls())
	}
}
