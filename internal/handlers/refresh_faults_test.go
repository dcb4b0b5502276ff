package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// A refresh whose ID token fails verification is a provider fault with a
// problem type of its own, not "Tesla did not answer in time", and the log
// names the check that failed. The link stays active; the next refresh works.
func TestRefreshWithBadIDTokenIsAProviderFault(t *testing.T) {
	t.Parallel()
	for fault, check := range map[teslasim.Fault]string{
		teslasim.FaultIDTokenBadSignature: "signature",
		teslasim.FaultIDTokenExpired:      "expired",
		teslasim.FaultIDTokenMissingIAT:   "iat",
	} {
		e := testenv.New(t, testenv.Options{})
		l := linkOwner(t, e, "fault@example.com")
		a := newAPI(t, e, newKey(t, e, "dispatch"))
		e.Sim.Inject(fault, teslasim.FaultOptions{Count: 1})
		_, res, body := a.token(l.ID, `{"force_refresh": true}`)
		wantProblem(t, res, body, http.StatusBadGateway, "tesla-invalid-response")
		if strings.Contains(string(body), "did not answer in time") {
			t.Errorf("%s: reported as a timeout: %s", fault, body)
		}
		logs := e.Logs.String()
		i := strings.Index(logs, `"msg":"Tesla's refresh answer failed verification`)
		if i < 0 {
			t.Fatalf("%s: no log line about the failed verification", fault)
		}
		line := logs[i:]
		line = line[:strings.IndexByte(line, '\n')]
		if !strings.Contains(line, `"check":"`) || !strings.Contains(strings.ToLower(line), check) {
			t.Errorf("%s: the log line does not name the failed check (%q): %s", fault, check, line)
		}
		got, err := e.Store.GetLink(context.Background(), l.ID)
		if err != nil || got.Status != db.StatusActive {
			t.Fatalf("%s: link after the fault: %v %v", fault, got.Status, err)
		}
		if _, res, body := a.token(l.ID, `{"force_refresh": true}`); res.StatusCode != http.StatusOK {
			t.Fatalf("%s: refresh after the fault: %d %s", fault, res.StatusCode, body)
		}
	}
}

// Within the cooldown after a refresh, a forced refresh returns that
// refresh's token instead of calling Tesla (which would end the token other
// API clients hold); after it, a forced refresh reaches Tesla again.
func TestForcedRefreshCooldown(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{ForceRefreshCooldown: 30 * time.Second})
	l := linkOwner(t, e, "cool@example.com")
	a := newAPI(t, e, newKey(t, e, "dispatch"))
	other := a.withKey(newKey(t, e, "billing"))
	e.Sim.Clock().Advance(2 * time.Minute) // well past the login's tokens
	before := e.Sim.Calls("token.refresh_token")
	first, res, body := a.token(l.ID, `{"force_refresh": true}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("first forced refresh: %d %s", res.StatusCode, body)
	}
	if n := e.Sim.Calls("token.refresh_token") - before; n != 1 {
		t.Fatalf("first forced refresh: %d refreshes at Tesla, want 1", n)
	}
	e.Sim.Clock().Advance(10 * time.Second)
	for _, c := range []*api{a, other, a} {
		again, res, body := c.token(l.ID, `{"force_refresh": true}`)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("forced refresh within the cooldown: %d %s", res.StatusCode, body)
		}
		if again.AccessToken != first.AccessToken {
			t.Fatal("a forced refresh within the cooldown did not return the last refresh's token")
		}
	}
	if n := e.Sim.Calls("token.refresh_token") - before; n != 1 {
		t.Fatalf("forced refreshes within the cooldown reached Tesla: %d refreshes, want 1", n)
	}
	e.Sim.Clock().Advance(30 * time.Second)
	later, res, body := a.token(l.ID, `{"force_refresh": true}`)
	if res.StatusCode != http.StatusOK || later.AccessToken == first.AccessToken {
		t.Fatalf("forced refresh after the cooldown: %d, new token %v", res.StatusCode, later.AccessToken != first.AccessToken)
	}
	if n := e.Sim.Calls("token.refresh_token") - before; n != 2 {
		t.Fatalf("after the cooldown: %d refreshes at Tesla, want 2", n)
	}
	_ = body
}

// With a slow Tesla and a small pool, forced refreshes cannot starve the
// pool: those of one link share one refresh, refreshes are capped well below
// the pool, and /readyz and pages keep answering.
func TestForcedRefreshesDoNotStarveThePool(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{DBMaxConns: 4})
	l := linkOwner(t, e, "slow@example.com")
	others := []*db.Link{linkOwner(t, e, "slow2@example.com"), linkOwner(t, e, "slow3@example.com")}
	a := newAPI(t, e, newKey(t, e, "dispatch"))
	e.Sim.Inject(teslasim.FaultLatency, teslasim.FaultOptions{Latency: 3 * time.Second, Endpoint: "token.refresh_token"})
	before := e.Sim.Calls("token.refresh_token")
	var wg sync.WaitGroup
	tokens := make(chan string, 20)
	codes := make(chan int, 20)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, res, _ := a.token(l.ID, `{"force_refresh": true}`)
			codes <- res.StatusCode
			tokens <- tok.AccessToken
		}()
	}
	for _, o := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, res, _ := a.token(o.ID, `{"force_refresh": true}`)
			codes <- res.StatusCode
		}()
	}
	time.Sleep(500 * time.Millisecond) // the refreshes are waiting on Tesla now
	b := e.Browser()
	for range 3 {
		start := time.Now()
		res, body := b.Get("/readyz")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("/readyz during slow refreshes: %d %s", res.StatusCode, body)
		}
		if res, _ := b.Get("/"); res.StatusCode != http.StatusOK {
			t.Fatalf("landing page during slow refreshes: %d", res.StatusCode)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("/readyz and / took %v during slow refreshes", d)
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	close(codes)
	close(tokens)
	for c := range codes {
		if c != http.StatusOK && c != http.StatusServiceUnavailable {
			t.Errorf("a forced refresh answered %d, want 200 or 503", c)
		}
	}
	seen := map[string]bool{}
	for tok := range tokens {
		if tok != "" {
			seen[tok] = true
		}
	}
	if len(seen) != 1 {
		t.Errorf("6 concurrent forced refreshes of one link got %d different tokens, want 1 (one shared refresh)", len(seen))
	}
	if n := e.Sim.Calls("token.refresh_token") - before; n != 1+len(others) {
		t.Errorf("%d refreshes reached Tesla, want %d (one per link)", n, 1+len(others))
	}
}
