package oidc

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiscoveryMismatchedIssuer(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	c, _, _ := newClient(t, p, nil)
	if c.Ready() {
		t.Fatal("ready before discovery")
	}
	mustDiscover(t, c)
	if !c.Ready() {
		t.Fatal("not ready after discovery")
	}
	if got := c.Issuer(); got != "https://auth.example.test/oauth2/v3" {
		t.Errorf("Issuer() = %q", got)
	}
	if got, want := c.CallbackIssuer(), p.url("/oauth2/v3"); got != want {
		t.Errorf("CallbackIssuer() = %q, want %q", got, want)
	}
	// Discover again: cached, no network.
	hits := p.discoveryHits.Load()
	mustDiscover(t, c)
	if p.discoveryHits.Load() != hits {
		t.Error("second Discover fetched again")
	}
}

func TestDiscoveryRetriesOn503(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 3
	c, _, sl := newClient(t, p, nil)
	mustDiscover(t, c)
	if n := p.discoveryHits.Load(); n != 4 {
		t.Errorf("discovery hits = %d, want 4", n)
	}
	ds := sl.all()
	if len(ds) != 3 {
		t.Fatalf("sleeps = %v, want 3", ds)
	}
	if !(ds[2] > ds[0]/2) || ds[0] <= 0 {
		t.Errorf("backoff not growing: %v", ds)
	}
}

func TestDiscoverGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 1 << 30
	c, _, _ := newClient(t, p, nil)
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(ctx context.Context, d time.Duration) error {
		if p.discoveryHits.Load() >= 3 {
			cancel()
		}
		return ctx.Err()
	}
	err := c.Discover(ctx)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if c.Ready() {
		t.Fatal("ready after failed discovery")
	}
}

func TestStartDiscoveryBackground(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 2
	c, _, _ := newClient(t, p, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	c.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	go func() {
		for !c.Ready() && ctx.Err() == nil {
			time.Sleep(time.Millisecond) // polling for a background goroutine, not for time passage
		}
		close(done)
	}()
	c.StartDiscovery(ctx)
	<-done
	if !c.Ready() {
		t.Fatal("StartDiscovery did not succeed")
	}
}

func TestDefaultsForTeslaAndStandardProviders(t *testing.T) {
	t.Parallel()
	meta := metadata{
		Issuer:                "https://auth.tesla.com/oauth2/v3",
		AuthorizationEndpoint: "https://auth.tesla.com/oauth2/v3/authorize",
		TokenEndpoint:         "https://auth.tesla.com/oauth2/v3/token",
		UserinfoEndpoint:      "https://auth.tesla.com/oauth2/v3/userinfo",
		JWKSURI:               "https://auth.tesla.com/oauth2/v3/discovery/thirdparty/keys",
	}
	tests := []struct {
		name, discovery, wantToken, wantCB string
		wantIss                            []string
	}{
		{"tesla", DefaultDiscoveryURL, DefaultTeslaTokenURL, "https://auth.tesla.com/oauth2/v3", []string{DefaultTeslaIssuer}},
		{"fleet-auth", "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/thirdparty/.well-known/openid-configuration", DefaultTeslaTokenURL, "https://auth.tesla.com/oauth2/v3", []string{DefaultTeslaIssuer}},
		{"china", "https://auth.tesla.cn/oauth2/v3/thirdparty/.well-known/openid-configuration", DefaultTeslaTokenURL, "https://auth.tesla.com/oauth2/v3", []string{DefaultTeslaIssuer, DefaultTeslaIssuerCN}},
		{"standard", "https://idp.example.org/realms/x/.well-known/openid-configuration", meta.TokenEndpoint, "https://auth.tesla.com/oauth2/v3", []string{meta.Issuer}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := New(Config{DiscoveryURL: tc.discovery, ClientID: "x"})
			s, err := c.buildState(meta)
			if err != nil {
				t.Fatal(err)
			}
			if s.tokenURL != tc.wantToken {
				t.Errorf("token URL = %q, want %q", s.tokenURL, tc.wantToken)
			}
			if s.callbackIssuer != tc.wantCB {
				t.Errorf("callback issuer = %q", s.callbackIssuer)
			}
			if len(s.issuers) != len(tc.wantIss) {
				t.Fatalf("issuers = %v, want %v", s.issuers, tc.wantIss)
			}
			for i := range s.issuers {
				if s.issuers[i] != tc.wantIss[i] {
					t.Errorf("issuers = %v, want %v", s.issuers, tc.wantIss)
				}
			}
		})
	}
	// Overrides win.
	c := New(Config{DiscoveryURL: DefaultDiscoveryURL, TokenURL: "https://tok.example/t", Issuers: []string{"https://i"}, CallbackIssuer: "https://cb"})
	s, err := c.buildState(meta)
	if err != nil {
		t.Fatal(err)
	}
	if s.tokenURL != "https://tok.example/t" || s.callbackIssuer != "https://cb" || len(s.issuers) != 1 || s.issuers[0] != "https://i" {
		t.Errorf("overrides ignored: %+v", s)
	}
	// Broken metadata is refused.
	bad := meta
	bad.JWKSURI = "/relative"
	if _, err := c.buildState(bad); err == nil {
		t.Error("relative jwks_uri accepted")
	}
}

func TestHTTPClientHasTimeouts(t *testing.T) {
	t.Parallel()
	for _, hc := range []*http.Client{nil, http.DefaultClient} {
		c := New(Config{HTTPClient: hc})
		if c.http == http.DefaultClient || c.http == nil {
			t.Fatal("client uses http.DefaultClient")
		}
		if c.http.Timeout != 10*time.Second {
			t.Errorf("timeout = %v", c.http.Timeout)
		}
		tr, ok := c.http.Transport.(*http.Transport)
		if !ok || tr.TLSHandshakeTimeout != 5*time.Second || tr.ResponseHeaderTimeout != 10*time.Second || tr.DialContext == nil {
			t.Errorf("transport lacks timeouts: %#v", c.http.Transport)
		}
	}
}

func TestSlowProviderHitsClientTimeout(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.handle("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	c, _, _ := newClient(t, p, func(cfg *Config) { cfg.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
	start := time.Now()
	err := c.discoverOnce(context.Background())
	if err == nil {
		t.Fatal("slow provider did not time out")
	}
	if KindOf(err) != KindTransient {
		t.Errorf("kind = %v, want KindTransient", KindOf(err))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
}

func TestNotReadyCallsDoNotStampede(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 1 << 30
	c, clk, _ := newClient(t, p, nil)
	raw := sign(t, signingKey{"k1", rsaKeys()[0]}, idClaims(nil))
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc"); !errors.Is(err, ErrNotReady) {
				t.Errorf("err = %v, want ErrNotReady", err)
			}
		}()
	}
	wg.Wait()
	if n := p.discoveryHits.Load(); n > 3 {
		t.Errorf("30 concurrent calls made %d discovery attempts", n)
	}
	before := p.discoveryHits.Load()
	for range 10 {
		_, _ = c.AuthCodeURL(context.Background(), AuthRequest{State: "s", Nonce: "n", Verifier: testVerifier, Scopes: []string{"openid"}})
	}
	if p.discoveryHits.Load() != before {
		t.Error("calls within the failure backoff retried discovery")
	}
	// After the backoff a call tries again, and succeeds once the provider is back.
	p.mu.Lock()
	p.discoveryFails = 0
	p.mu.Unlock()
	clk.Add(3 * time.Second)
	if _, err := c.VerifyIDToken(context.Background(), raw, "nonce-abc"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if !c.Ready() {
		t.Error("not ready after recovery")
	}
}

func TestOwnClientRefusesCrossHostRedirects(t *testing.T) {
	t.Parallel()
	other := newProvider(t)
	var otherHits atomic.Int32
	other.handle("/steal", func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) })
	p := newProvider(t)
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.url("/steal"), http.StatusTemporaryRedirect)
	})
	c, _, _ := newClient(t, p, func(cfg *Config) { cfg.HTTPClient = nil })
	if _, err := c.Refresh(context.Background(), "NA_rt-old", "", ""); err == nil {
		t.Fatal("redirected refresh succeeded")
	}
	if otherHits.Load() != 0 {
		t.Fatal("token request followed a cross-host redirect")
	}
}
