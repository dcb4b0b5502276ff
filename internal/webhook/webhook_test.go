package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"teslalink/internal/db"
)

// The example published with the Standard Webhooks specification (and its
// reference libraries' tests): secret, message id, timestamp, payload and
// the signature every conforming implementation must produce.
func TestSignMatchesStandardWebhooksExample(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		msgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got, err := Sign(secret, msgID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if err := Verify(secret, msgID, "1614265330", "v2,x "+want, body, ts, 5*time.Minute); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := Verify(secret, msgID, "1614265330", want, []byte(`{"test": 2432232315}`), ts, 5*time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := Verify(secret, msgID, "1614265330", want, body, ts.Add(6*time.Minute), 5*time.Minute); err == nil {
		t.Fatal("an old timestamp verified")
	}
}

func TestNewSecretIsStandardForm(t *testing.T) {
	s := NewSecret()
	if !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("secret %q", s)
	}
	key, err := secretKey(s)
	if err != nil || len(key) != 32 {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	if id := NewMsgID(); NewSecret() == s || NewMsgID() == id {
		t.Fatal("not random")
	}
	if _, err := Sign("whsec_***", "msg_1", time.Now(), nil); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("bad secret: %v", err)
	}
}

func TestBodyCarriesNoTokenAndSaysWhoRevoked(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l := &db.Link{ID: "0b5d7c1e-3f0a-4c2e-9a43-7d1f3f7e2b10", OwnerSub: "sub-1", Status: db.StatusRevoked,
		RefreshTokenSealed: []byte("sealed-refresh"), AccessTokenSealed: []byte("sealed-access"), LinkedAt: at, StatusChangedAt: at}
	b, err := Body(db.LinkEvent{Type: db.EventLinkRevoked, At: at, Link: l, RevokedBy: "team"})
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	data := p["data"].(map[string]any)
	if p["type"] != "link.revoked" || p["timestamp"] != "2026-11-30T12:00:00Z" || data["id"] != l.ID || p["revoked_by"] != "team" {
		t.Fatalf("payload %s", b)
	}
	if strings.Contains(string(b), "sealed") || strings.Contains(string(b), "token\"") {
		t.Fatalf("payload carries token material: %s", b)
	}
}

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "0.0.0.0": false, "::": false, "fe80::1": false, "fc00::1": false,
		"100.64.0.1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "224.0.0.1": false,
		"8.8.8.8": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true,
	} {
		if got := Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestSenderRefusesPrivateTargetsAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	s := NewSender(SenderOptions{})
	// By address, and by a name that resolves to loopback: the check is on
	// the address dialled, not on the name.
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		res := s.Send(context.Background(), u, NewSecret(), NewMsgID(), []byte(`{}`))
		if !errors.Is(res.Err, ErrPrivateTarget) || res.StatusCode != 0 {
			t.Fatalf("%s: %+v", u, res)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("the private target was reached")
	}
	allowed := NewSender(SenderOptions{AllowPrivate: true})
	if res := allowed.Send(context.Background(), srv.URL, NewSecret(), NewMsgID(), []byte(`{}`)); res.Err != nil || res.StatusCode != 200 {
		t.Fatalf("allowed: %+v", res)
	}
}

func TestSenderRefusesOtherSchemes(t *testing.T) {
	s := NewSender(SenderOptions{AllowPrivate: true})
	for _, u := range []string{"file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/", "//example.com/x",
		"http://user:pw@127.0.0.1/"} {
		if res := s.Send(context.Background(), u, NewSecret(), NewMsgID(), nil); res.Err == nil {
			t.Errorf("%s was sent", u)
		}
	}
}

func TestSenderDoesNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	res := NewSender(SenderOptions{AllowPrivate: true}).Send(context.Background(), redirect.URL, NewSecret(), NewMsgID(), []byte(`{}`))
	if res.StatusCode != http.StatusTemporaryRedirect || res.Err == nil || !strings.Contains(res.Err.Error(), "redirect") {
		t.Fatalf("redirect: %+v", res)
	}
	if reached.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestSenderTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	res := NewSender(SenderOptions{AllowPrivate: true, Timeout: 300 * time.Millisecond}).
		Send(context.Background(), srv.URL, NewSecret(), NewMsgID(), []byte(`{}`))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "timed out") || time.Since(start) > 5*time.Second {
		t.Fatalf("slow receiver: %+v after %s", res, time.Since(start))
	}
	if strings.Contains(res.Err.Error(), srv.URL) {
		t.Fatalf("the error repeats the URL: %v", res.Err)
	}
}

func TestSenderSignsWhatItSends(t *testing.T) {
	secret := NewSecret()
	verr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr <- Verify(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"),
			body, time.Now(), 5*time.Minute)
	}))
	defer srv.Close()
	res := NewSender(SenderOptions{AllowPrivate: true}).Send(context.Background(), srv.URL, secret, "msg_abc", []byte(`{"type":"x"}`))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if err := <-verr; err != nil {
		t.Fatalf("receiver could not verify: %v", err)
	}
}
