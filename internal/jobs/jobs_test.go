package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"teslalink/internal/db"
	"teslalink/internal/handlers"
	"teslalink/internal/linksession"
	"teslalink/internal/pgtest"
	"teslalink/internal/testenv"
	"teslalink/internal/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// receiver is a team's webhook endpoint: it checks every signature, can
// fail the first requests, and remembers what it accepted.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	failNext int            // answer 500 to this many more requests
	requests int            // all requests
	accepted map[string]int // webhook-id → times answered 2xx
	events   []event        // accepted events, in arrival order
	badSig   int
}

type event struct {
	ID        string
	Raw       []byte `json:"-"` // the body as received
	Type      string `json:"type"`
	RevokedBy string `json:"revoked_by"`
	Data      struct {
		ID          string   `json:"id"`
		Status      string   `json:"status"`
		Scopes      []string `json:"granted_scopes"`
		ExternalRef *string  `json:"external_ref"`
	} `json:"data"`
}

func newReceiver(t *testing.T, e *testenv.Env, types ...string) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: webhook.NewSecret(), accepted: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	if _, err := e.Store.CreateWebhookEndpoint(context.Background(), r.srv.URL+"/hooks", r.secret, types); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	id := req.Header.Get("webhook-id")
	if err := webhook.Verify(r.secret, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body,
		time.Now(), 5*time.Minute); err != nil {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.failNext > 0 {
		r.failNext--
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	if err := checkPayload(req.Header.Get("webhook-id"), ev.Type, body); err != nil {
		r.t.Errorf("payload does not match openapi.yaml: %v\n%s", err, body)
	}
	ev.ID, ev.Raw = id, body
	if r.accepted[id] == 0 {
		r.events = append(r.events, ev)
	}
	r.accepted[id]++
}

// types returns the types of the events received so far, in order.
func (r *receiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Type)
	}
	return out
}

// waitFor waits until the receiver holds want (in this order), or fails.
func (r *receiver) waitFor(want ...string) []event {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Equal(r.types(), want) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return slices.Clone(r.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("received %v, want %v", r.types(), want)
	return nil
}

var webhookDoc = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(handlers.OpenAPI())
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// checkPayload validates a received body against the OpenAPI document's
// webhooks section: the event must be listed there, with its schema.
func checkPayload(id, typ string, body []byte) error {
	doc, err := webhookDoc()
	if err != nil {
		return err
	}
	item := doc.Webhooks[typ]
	if item == nil || item.Post == nil {
		return fmt.Errorf("event %s is not under webhooks", typ)
	}
	if id == "" {
		return errors.New("no webhook-id")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value.VisitJSON(v)
}

func login(t *testing.T, e *testenv.Env, email string, scopes ...string) *db.Link {
	t.Helper()
	if scopes == nil {
		scopes = []string{"user_data", "vehicle_device_data"}
	}
	if res, _ := e.Browser().Login(email, scopes, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d", email, res.StatusCode)
	}
	links, err := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub(email), Limit: 1})
	if err != nil || len(links) != 1 {
		t.Fatalf("link of %s: %v", email, err)
	}
	return &links[0].Link
}

func TestReceiverThatFailsTwiceGetsEachEventOnce(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true})
	r := newReceiver(t, e)
	r.failNext = 2
	l := login(t, e, "a@example.com")
	evs := r.waitFor("link.created")
	if evs[0].Data.ID != l.ID || evs[0].Data.Status != "active" {
		t.Fatalf("event %+v", evs[0])
	}
	time.Sleep(300 * time.Millisecond) // room for a wrong extra delivery
	r.mu.Lock()
	requests, accepted, bad := r.requests, r.accepted[evs[0].ID], r.badSig
	r.mu.Unlock()
	if requests != 3 || accepted != 1 || bad != 0 {
		t.Fatalf("requests %d, accepted %d times, bad signatures %d; want 3, 1, 0", requests, accepted, bad)
	}
	rows, err := e.Store.ListWebhookDeliveries(context.Background(), false, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("deliveries %v %v", rows, err)
	}
	if rows[0].Status != db.DeliverySucceeded || rows[0].Attempts != 3 || rows[0].MsgID != evs[0].ID {
		t.Fatalf("delivery %+v", rows[0])
	}
	attempts, err := e.Store.WebhookAttempts(context.Background(), rows[0].ID)
	if err != nil || len(attempts) != 3 {
		t.Fatalf("attempts %+v %v", attempts, err)
	}
	for i, want := range []int{500, 500, 200} {
		a := attempts[i]
		if a.StatusCode != want || a.At.IsZero() || (want == 500) == (a.Error == "") {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	eps, _ := e.Store.ListWebhookEndpoints(context.Background())
	if eps[0].ConsecutiveFailures != 0 || !eps[0].FailingSince.IsZero() || eps[0].LastSuccessAt.IsZero() {
		t.Fatalf("endpoint health after success: %+v", eps[0])
	}
	// The metrics saw the same attempts, and the queue is empty again.
	if err := e.App.Metrics.UpdateLinkCounts(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.App.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`teslalink_webhook_deliveries_total{result="failed"} 2`,
		`teslalink_webhook_deliveries_total{result="ok"} 1`, "teslalink_webhook_queue_depth 0"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestLinkEventsInOrder(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true})
	r := newReceiver(t, e)
	r.failNext = 2 // the first event is retried; the later ones wait for it
	l := login(t, e, "a@example.com")
	login(t, e, "a@example.com", "user_data", "vehicle_device_data", "vehicle_location") // more scopes
	if _, err := e.Links.Revoke(context.Background(), l.ID, "api:billing"); err != nil {
		t.Fatal(err)
	}
	evs := r.waitFor("link.created", "link.updated", "link.revoked")
	if !slices.Contains(evs[1].Data.Scopes, "vehicle_location") || evs[2].RevokedBy != "team" || evs[2].Data.Status != "revoked" {
		t.Fatalf("events %+v", evs)
	}
}

func TestEventSubscriptionsAndFailingEndpoint(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true, RetrySchedule: []time.Duration{10 * time.Millisecond}})
	onlyRevoked := newReceiver(t, e, "link.revoked")
	down := newReceiver(t, e)
	down.failNext = 1000
	l := login(t, e, "a@example.com")
	if _, err := e.Links.Revoke(context.Background(), l.ID, "owner"); err != nil {
		t.Fatal(err)
	}
	evs := onlyRevoked.waitFor("link.revoked")
	if evs[0].RevokedBy != "owner" {
		t.Fatalf("revoked by %q", evs[0].RevokedBy)
	}
	// The endpoint that is down: both events tried twice, then given up,
	// kept, and the endpoint shown as failing.
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		failed, err := e.Store.ListWebhookDeliveries(ctx, true, 10)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range failed {
			if d.Status == db.DeliveryFailed && d.Attempts == 2 && d.Last != nil && d.Last.StatusCode == 500 {
				done++
			}
		}
		if done == 2 && len(failed) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed deliveries: %+v", failed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	eps, _ := e.Store.ListWebhookEndpoints(ctx)
	var failing int
	for _, ep := range eps {
		if ep.ConsecutiveFailures > 0 {
			failing++
			if ep.ConsecutiveFailures != 4 || ep.FailingSince.IsZero() {
				t.Fatalf("failing endpoint %+v", ep)
			}
		}
	}
	if failing != 1 {
		t.Fatalf("%d endpoints failing, want 1", failing)
	}
}

// A change committed by an instance that stops before delivering it (as in
// a crash) is delivered by the next instance that starts on the database.
func TestEventSurvivesRestart(t *testing.T) {
	t.Parallel()
	a := testenv.New(t, testenv.Options{}) // works no jobs: as if it died after each commit
	r := newReceiver(t, a)
	l := login(t, a, "a@example.com")
	if _, err := a.Links.Revoke(context.Background(), l.ID, "owner"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := r.types(); len(got) != 0 {
		t.Fatalf("delivered without a worker: %v", got)
	}
	a.Server.Close()
	a.Store.Close()
	b := testenv.New(t, testenv.Options{DatabaseURL: a.DBURL, Sim0: a.Sim, TokenKeys: a.KeySpec, Jobs: true})
	_ = b
	r.waitFor("link.created", "link.revoked")
}

// A change that rolls back sends nothing.
func TestRolledBackChangeSendsNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true})
	r := newReceiver(t, e)
	ctx := context.Background()
	_, err := e.Store.SaveLink(ctx, db.LinkGrant{Sub: "sub-x", Region: "na", GrantedScopes: []string{"openid"}},
		func(string) (db.SealedTokens, error) { return db.SealedTokens{}, io.ErrUnexpectedEOF })
	if err == nil {
		t.Fatal("SaveLink succeeded")
	}
	login(t, e, "a@example.com") // a later change is delivered: the queue works
	r.waitFor("link.created")
	time.Sleep(200 * time.Millisecond)
	if got := r.types(); len(got) != 1 {
		t.Fatalf("received %v", got)
	}
	var n int
	rows, _ := e.Store.ListWebhookDeliveries(ctx, false, 10)
	n = len(rows)
	if n != 1 {
		t.Fatalf("%d deliveries recorded, want 1", n)
	}
}

// A claim binds the link to the team's user and tells the team: link.created
// the first time, link.updated when another user of the team claims it.
func TestClaimSendsLinkCreatedThenUpdated(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true})
	ctx := context.Background()
	client, err := e.Store.CreateAPIClient(ctx, "backend", "tlk_test", []byte("0123456789abcdef0123456789abcdef"), []string{"links:create"})
	if err != nil {
		t.Fatal(err)
	}
	l := login(t, e, "a@example.com")
	r := newReceiver(t, e)
	claim := func(ref string) {
		t.Helper()
		s, err := e.LinkSessions.Create(ctx, client.ID, linksession.CreateRequest{ExternalRef: ref, ReturnURL: "http://127.0.0.1:9/done"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.LinkSessions.Start(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		back, err := e.LinkSessions.Finish(ctx, s.ID, linksession.Outcome{Status: db.SessionLinked, LinkID: l.ID})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(back)
		if _, err := e.LinkSessions.Claim(ctx, client.ID, s.ID, u.Query().Get("code"), ref); err != nil {
			t.Fatal(err)
		}
	}
	claim("user-42")
	claim("user-43")
	evs := r.waitFor("link.created", "link.updated")
	if evs[0].Data.ExternalRef == nil || *evs[0].Data.ExternalRef != "user-42" || *evs[1].Data.ExternalRef != "user-43" {
		t.Fatalf("events %+v", evs)
	}
}
