package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/oidc/oidctest"
	"teslalink/internal/testenv"
)

// The service against a standard OpenID provider (not Tesla, not the simulator): issuer
// equal to its URL, ES256/RS256 ID tokens, client_secret_basic only, no `audience`
// support, opaque tokens, RFC 9207 `iss` on the callback, userinfo optional.

// standardEnv starts a provider with cfg and the service pointed at it.
func standardEnv(t *testing.T, cfg oidctest.Config) (*oidctest.Provider, *testenv.Env) {
	t.Helper()
	p, err := oidctest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	e := testenv.New(t, testenv.Options{Provider: &testenv.Provider{
		DiscoveryURL: p.DiscoveryURL(), ClientID: p.ClientID(), ClientSecret: p.ClientSecret(), Secrets: p.Secrets,
	}})
	return p, e
}

// authorizeAt plays the owner at the provider and returns the callback URL.
func authorizeAt(t *testing.T, p *oidctest.Provider, authURL string) *url.URL {
	t.Helper()
	if !strings.HasPrefix(authURL, p.URL()+"/authorize?") {
		t.Fatalf("authorize URL %q is not the provider's", authURL)
	}
	cb, err := p.Authorize(context.Background(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("iss") != p.Issuer() && !p.Config().NoIss {
		t.Fatalf("callback lacks RFC 9207 iss: %s", cb.RawQuery)
	}
	return cb
}

func TestStandardProviderLinkFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        oidctest.Config
		wantScopes []string
	}{
		{"ES256 with userinfo", oidctest.Config{Email: "ada@example.org", Name: "Ada"},
			[]string{"openid", "offline_access", "user_data"}},
		{"RS256 without userinfo or iss", oidctest.Config{Alg: "RS256", NoUserInfo: true, NoIss: true, Email: "ada@example.org", Name: "Ada"},
			[]string{"openid", "offline_access", "user_data"}},
		{"owner grants fewer scopes", oidctest.Config{DropScopes: []string{"user_data"}, NoRotation: true, Email: "ada@example.org"},
			[]string{"openid", "offline_access"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, e := standardEnv(t, tc.cfg)
			b := e.Browser()
			cb := authorizeAt(t, p, b.StartLogin([]string{"user_data"}))
			res, _ := b.Get(cb.String())
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
				t.Fatalf("callback: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			res, body := b.Get("/account")
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "ada@example.org") {
				t.Fatalf("account: %d, email shown: %v", res.StatusCode, strings.Contains(body, "ada@example.org"))
			}
			ctx := context.Background()
			l, err := e.Store.GetLinkByOwner(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if l.Status != db.StatusActive || !slices.Equal(l.GrantedScopes, tc.wantScopes) || l.Region != "na" ||
				l.OwnerEmail != "ada@example.org" || l.IDTokenIssuer != p.Issuer() || l.OwnerSub != "owner-1" {
				t.Fatalf("link: status %s scopes %v region %s email %q iss %q sub %q",
					l.Status, l.GrantedScopes, l.Region, l.OwnerEmail, l.IDTokenIssuer, l.OwnerSub)
			}
			st := p.Stats()
			if st.Exchanges != 1 || st.BasicAuth != 1 || st.SecretInForm != 0 || st.AudienceRefused != 0 {
				t.Fatalf("provider stats after login: %+v", st)
			}
			wantUI := 1
			if tc.cfg.NoUserInfo {
				wantUI = 0 // profile from the ID token
			}
			if st.UserInfoCalls != wantUI {
				t.Errorf("userinfo calls = %d, want %d", st.UserInfoCalls, wantUI)
			}

			// Two forced refreshes: client_secret_basic each time, the rotated (or,
			// without rotation, the kept) refresh token works again.
			first, err := e.Links.AccessToken(ctx, l.ID, link.TokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			prev := first.AccessToken
			for i := range 2 {
				tok, err := e.Links.AccessToken(ctx, l.ID, link.TokenRequest{ForceRefresh: true})
				if err != nil {
					t.Fatalf("refresh %d: %v", i+1, err)
				}
				if tok.AccessToken == prev || !slices.Equal(tok.Scopes, tc.wantScopes) || tok.Region != "na" {
					t.Fatalf("refresh %d: same token %v, scopes %v, region %s", i+1, tok.AccessToken == prev, tok.Scopes, tok.Region)
				}
				prev = tok.AccessToken
			}
			if st := p.Stats(); st.Refreshes != 2 || st.BasicAuth != 3 || st.SecretInForm != 0 {
				t.Fatalf("provider stats after refresh: %+v", st)
			}
			if l, _ = e.Store.GetLink(ctx, l.ID); l.Status != db.StatusActive {
				t.Fatalf("link after refresh: %s %s", l.Status, l.StatusReason)
			}
			if leaks := e.Leaks(b); len(leaks) > 0 {
				t.Fatalf("leaked: %v", leaks)
			}
		})
	}
}

func TestStandardProviderRefusesScopesFriendlyPage(t *testing.T) {
	t.Parallel()
	// A provider that knows none of Tesla's scopes.
	p, e := standardEnv(t, oidctest.Config{Scopes: []string{"openid", "offline_access", "profile", "email"}})
	b := e.Browser()
	cb := authorizeAt(t, p, b.StartLogin([]string{"user_data"}))
	if cb.Query().Get("error") != "invalid_scope" {
		t.Fatalf("callback = %s", cb.RawQuery)
	}
	res, body := b.Get(cb.String())
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-testid="retry-link"`) ||
		!strings.Contains(body, `href="/connect"`) || !strings.Contains(body, "permissions") {
		t.Fatalf("invalid_scope page: %d\n%s", res.StatusCode, body)
	}
	if _, err := e.Store.GetLinkByOwner(context.Background(), 1); err == nil {
		t.Fatal("a link was stored after invalid_scope")
	}
	if st := p.Stats(); st.Exchanges != 0 {
		t.Fatalf("exchange attempted: %+v", st)
	}
}

func TestStandardProviderCallbackIssMismatch(t *testing.T) {
	t.Parallel()
	p, e := standardEnv(t, oidctest.Config{})
	b := e.Browser()
	cb := authorizeAt(t, p, b.StartLogin([]string{"user_data"}))
	q := cb.Query()
	q.Set("iss", "https://evil.example")
	cb.RawQuery = q.Encode()
	res, _ := b.Get(cb.String())
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("mismatched iss: %d", res.StatusCode)
	}
	if st := p.Stats(); st.Exchanges != 0 {
		t.Fatalf("code redeemed despite iss mismatch: %+v", st)
	}
}
