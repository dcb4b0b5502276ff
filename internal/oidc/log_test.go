package oidc

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsAndErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.discoveryFails = 1
	var logs syncBuffer
	secrets := []string{"NA_rt-old", "NA_code-secret", testSecret, testVerifier, "at-secret"}
	p.handle("/oauth2/v3/token", func(w http.ResponseWriter, r *http.Request) {
		// Echo the request back in the error, as a careless server might.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"server_error","error_description":"` + r.PostForm.Encode() + r.URL.RawQuery + `"}`))
	})
	p.handle("/oauth2/v3/userinfo", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"missing scopes for ` + r.Header.Get("Authorization") + `"}`))
	})
	c, _, _ := newClient(t, p, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	mustDiscover(t, c)
	var errs []error
	_, err := c.Refresh(context.Background(), "NA_rt-old", "", "")
	errs = append(errs, err)
	_, err = c.Exchange(context.Background(), "NA_code-secret", testVerifier, "")
	errs = append(errs, err)
	_, err = c.UserInfo(context.Background(), "at-secret", "owner-sub-1")
	errs = append(errs, err)
	_, err = c.PartnerToken(context.Background(), p.srv.URL)
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil {
			t.Fatal("expected an error")
		}
		for _, s := range secrets {
			if strings.Contains(e.Error(), s) {
				t.Errorf("error %q contains %q", e, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("expected retry logs, got %s", logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains %q", s)
		}
	}
}
