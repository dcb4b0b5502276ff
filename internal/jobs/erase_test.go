package jobs_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"teslalink/internal/db"
	"teslalink/internal/linksession"
	"teslalink/internal/testenv"
)

// Erasing an owner tells the team which links went, by link id and
// external_ref only: nothing about the owner travels with it.
func TestEraseSendsOwnerErasedWithOnlyLinkAndExternalRef(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{Jobs: true})
	ctx := context.Background()
	client, err := e.Store.CreateAPIClient(ctx, "backend", "tlk_test", []byte("0123456789abcdef0123456789abcdef"), []string{"links:create"})
	if err != nil {
		t.Fatal(err)
	}
	l := login(t, e, "a@example.com")
	other := login(t, e, "b@example.com") // never claimed: external_ref null
	r := newReceiver(t, e)
	s, err := e.LinkSessions.Create(ctx, client.ID, linksession.CreateRequest{ExternalRef: "user-42", ReturnURL: "http://127.0.0.1:9/done"})
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
	if _, err := e.LinkSessions.Claim(ctx, client.ID, s.ID, u.Query().Get("code"), "user-42"); err != nil {
		t.Fatal(err)
	}
	r.waitFor("link.created")

	if _, err := e.Owners.Erase(ctx, l.OwnerID, "owner"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Owners.Erase(ctx, other.OwnerID, "api:backend"); err != nil {
		t.Fatal(err)
	}
	evs := r.waitFor("link.created", "owner.erased", "owner.erased")
	// Events about different links may arrive in either order.
	want := map[string]string{`"` + l.ID + `"`: `"user-42"`, `"` + other.ID + `"`: "null"}
	for _, ev := range evs[1:] {
		var body struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(ev.Raw, &body); err != nil {
			t.Fatal(err)
		}
		link := string(body.Data["link_id"])
		ref, ok := want[link]
		if len(body.Data) != 2 || !ok || string(body.Data["external_ref"]) != ref {
			t.Errorf("owner.erased data = %s, want only link_id and external_ref as in %v", ev.Raw, want)
		}
		delete(want, link)
		for _, personal := range []string{"a@example.com", "b@example.com", e.Sim.OwnerSub("a@example.com"), e.Sim.OwnerSub("b@example.com")} {
			if strings.Contains(string(ev.Raw), personal) {
				t.Errorf("owner.erased carries %q", personal)
			}
		}
	}
	// The erased links' earlier events went with them; only the erasure stays.
	if types, err := e.Store.LinkEventTypes(ctx, l.ID); err != nil || len(types) != 0 {
		t.Errorf("events still stored under the erased link: %v %v", types, err)
	}
}
