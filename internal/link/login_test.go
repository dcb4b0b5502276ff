package link_test

import (
	"context"
	"net/url"
	"testing"

	"teslalink/internal/apperr"
	"teslalink/internal/link"
	"teslalink/internal/testenv"
)

// A caller that begins a login with its own data (a link session id and a
// return path) gets both back from FinishLogin, with the link; the same
// login state cannot finish twice, and nonsense return paths are dropped.
func TestLoginBeginFinishCarriesCallerData(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	authURL, st, err := e.Links.BeginLogin(ctx, link.BeginRequest{Scopes: []string{"vehicle_device_data"},
		ReturnTo: "/after?x=1", LinkSessionID: "ls_123"})
	if err != nil {
		t.Fatal(err)
	}
	if st.State == "" || st.Nonce == "" || len(st.Verifier) < 43 || st.LinkSessionID != "ls_123" {
		t.Fatalf("login state %+v", st)
	}
	loc, err := e.Sim.Consent(ctx, authURL, "ann@example.com", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.Links.FinishLogin(ctx, st, loc.Query())
	if err != nil {
		t.Fatal(err)
	}
	if done.LinkSessionID != "ls_123" || done.ReturnTo != "/after?x=1" || done.Link == nil || done.Link.OwnerEmail != "ann@example.com" {
		t.Errorf("finished: %+v", done)
	}
	if _, err := e.Links.FinishLogin(ctx, st, loc.Query()); !apperr.Is(err, apperr.LoginReplayed) {
		t.Errorf("second finish: %v, want %s", err, apperr.LoginReplayed)
	}

	_, st2, err := e.Links.BeginLogin(ctx, link.BeginRequest{ReturnTo: "//evil.example/"})
	if err != nil || st2.ReturnTo != "" {
		t.Errorf("return path kept: %q (%v)", st2.ReturnTo, err)
	}
	if _, _, err := e.Links.BeginLogin(ctx, link.BeginRequest{Scopes: []string{"not_offered"}}); !apperr.Is(err, apperr.UnknownPermission) {
		t.Errorf("unknown scope: %v", err)
	}
	if _, err := e.Links.FinishLogin(ctx, nil, url.Values{}); !apperr.Is(err, apperr.LoginExpired) {
		t.Errorf("no login state: %v", err)
	}
}
