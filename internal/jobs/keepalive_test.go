package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

const month = 30 * 24 * time.Hour

// Two instances running keep-alive rounds at the same moment refresh each
// due link exactly once between them, within one global pace; then the
// periodic River job on both instances does the same.
func TestKeepAliveRefreshesEachDueLinkOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	a := testenv.New(t, testenv.Options{})
	b := testenv.New(t, testenv.Options{DatabaseURL: a.DBURL, Sim0: a.Sim, TokenKeys: a.KeySpec})
	const links = 6
	for i := range links {
		login(t, a, fmt.Sprintf("owner%d@example.com", i))
	}
	ctx := context.Background()
	a.Sim.Clock().Advance(month + 24*time.Hour)
	a.Sim.ResetCalls()

	opts := link.KeepAliveOptions{MaxAge: month, Rate: 20}
	start := time.Now()
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, e := range []*testenv.Env{a, b} {
		wg.Go(func() {
			n, err := e.Links.KeepAlive(ctx, opts)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if got := a.Sim.Calls("token.refresh_token"); got != links || counts[0]+counts[1] != links {
		t.Fatalf("refreshes at Tesla %d, reported %v; want %d", got, counts, links)
	}
	// 6 refreshes at 20 a second across both instances: slots 0, 50, ..., 250 ms.
	if elapsed < 240*time.Millisecond {
		t.Fatalf("6 refreshes took %s: faster than 20 a second overall", elapsed)
	}
	if n, err := a.Links.KeepAlive(ctx, opts); err != nil || n != 0 {
		t.Fatalf("second round: %d %v", n, err)
	}

	// The periodic job, on both instances.
	a.Sim.Clock().Advance(month + 24*time.Hour)
	a.Sim.ResetCalls()
	a.StartJobs()
	b.StartJobs()
	deadline := time.Now().Add(20 * time.Second)
	for a.Sim.Calls("token.refresh_token") < links && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // several more rounds on each instance
	if got := a.Sim.Calls("token.refresh_token"); got != links {
		t.Fatalf("periodic keep-alive: %d refreshes at Tesla, want %d", got, links)
	}
}

// A login_required during keep-alive, with two instances running it, flags
// the link once and sends exactly one link.reauth_required; the owner's
// relink then sends link.recovered.
func TestKeepAliveLoginRequiredAcrossInstances(t *testing.T) {
	t.Parallel()
	a := testenv.New(t, testenv.Options{Jobs: true})
	b := testenv.New(t, testenv.Options{DatabaseURL: a.DBURL, Sim0: a.Sim, TokenKeys: a.KeySpec, Jobs: true})
	_ = b
	r := newReceiver(t, a)
	l := login(t, a, "a@example.com")
	r.waitFor("link.created")

	a.Sim.Inject(teslasim.FaultRefreshLoginRequired, teslasim.FaultOptions{})
	a.Sim.Clock().Advance(month + 24*time.Hour)
	evs := r.waitFor("link.created", "link.reauth_required")
	if evs[1].Data.ID != l.ID || evs[1].Data.Status != db.StatusNeedsReauth {
		t.Fatalf("event %+v", evs[1])
	}
	time.Sleep(time.Second) // several more keep-alive rounds on both instances
	types, err := a.Store.LinkEventTypes(context.Background(), l.ID)
	if err != nil || !slices.Equal(types, []string{"link.created", "link.reauth_required"}) {
		t.Fatalf("events recorded %v %v", types, err)
	}

	a.Sim.ClearFaults()
	login(t, a, "a@example.com")
	evs = r.waitFor("link.created", "link.reauth_required", "link.recovered")
	if evs[2].Data.Status != db.StatusActive {
		t.Fatalf("recovered %+v", evs[2])
	}
}

// A link whose keep-alive keeps failing backs off (attempts and the next
// try stored) instead of being retried every round, and after 5 failures
// in a row link.refresh_failed fires, once.
func TestKeepAliveBacksOffAndReportsRefreshFailed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := login(t, e, "a@example.com")
	ctx := context.Background()
	e.Sim.Inject(teslasim.FaultHTTP503, teslasim.FaultOptions{})
	e.Sim.Clock().Advance(month + 24*time.Hour)
	opts := link.KeepAliveOptions{MaxAge: month, Rate: 1000}
	for attempt := 1; attempt <= 6; attempt++ {
		if n, err := e.Links.KeepAlive(ctx, opts); err != nil || n != 0 {
			t.Fatalf("round %d: %d %v", attempt, n, err)
		}
		st, err := e.Store.GetKeepAliveState(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		now := e.Sim.Clock().Now()
		if st.Attempts != attempt || !st.NextAt.After(now) || st.Error == "" {
			t.Fatalf("after attempt %d: %+v (now %s)", attempt, st, now)
		}
		// Backing off: another round now does not call Tesla.
		calls := e.Sim.Calls("token.refresh_token")
		if n, err := e.Links.KeepAlive(ctx, opts); err != nil || n != 0 || e.Sim.Calls("token.refresh_token") != calls {
			t.Fatalf("retried during backoff: %d %v", n, err)
		}
		e.Sim.Clock().Advance(st.NextAt.Sub(now) + time.Second)
	}
	types, _ := e.Store.LinkEventTypes(ctx, l.ID)
	if !slices.Equal(types, []string{"link.created", "link.refresh_failed"}) {
		t.Fatalf("events %v", types)
	}
	got, _ := e.Store.GetLink(ctx, l.ID)
	if got.Status != db.StatusActive {
		t.Fatalf("a transient failure changed the link: %s", got.Status)
	}
	// Tesla answers again: the next round refreshes and the backoff is cleared.
	e.Sim.ClearFaults()
	if n, err := e.Links.KeepAlive(ctx, opts); err != nil || n != 1 {
		t.Fatalf("after recovery: %d %v", n, err)
	}
	if st, _ := e.Store.GetKeepAliveState(ctx, l.ID); st.Attempts != 0 || !st.NextAt.IsZero() {
		t.Fatalf("state after success %+v", st)
	}
}
