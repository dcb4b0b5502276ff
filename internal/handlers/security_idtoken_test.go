package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

// docs/security.md, "ID token": every ID token (and userinfo) fault at login is a
// "reject": error page, no session cookie, no owner or link row, no Fleet API call.
func TestSecurityIDTokenRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault teslasim.Fault
	}{
		{teslasim.FaultIDTokenWrongIssuer},
		{teslasim.FaultIDTokenWrongAudience},
		{teslasim.FaultIDTokenMissingAudience},
		{teslasim.FaultIDTokenMissingSub},
		{teslasim.FaultIDTokenMissingIAT},
		{teslasim.FaultIDTokenExpired},
		{teslasim.FaultIDTokenBadSignature},
		{teslasim.FaultIDTokenAlgNone},
		{teslasim.FaultIDTokenWrongNonce},
		{teslasim.FaultIDTokenMissingNonce},
		{teslasim.FaultIDTokenUnknownKID},
		{teslasim.FaultUserinfoSubMismatch},
	}
	for _, tc := range tests {
		t.Run(string(tc.fault), func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			b := e.Browser()
			cb := b.Consent(b.StartLogin(vehicleScopes), "ann@example.com", nil, true)
			e.Sim.Inject(tc.fault, teslasim.FaultOptions{Count: 1})
			res, body := b.Get(cb)
			assertRejected(t, e, res, body)
			if _, on := e.Sim.ActiveFaults()[tc.fault]; on {
				t.Fatal("the fault was never applied: the test proves nothing")
			}
			if n := e.Sim.Calls("token.authorization_code"); n != 1 {
				t.Errorf("%d code exchanges, want 1", n)
			}
			if tc.fault == teslasim.FaultUserinfoSubMismatch && e.Sim.Calls("userinfo") != 1 {
				t.Errorf("userinfo called %d times", e.Sim.Calls("userinfo"))
			}
			if _, err := e.Store.GetLinkByOwner(context.Background(), 1); !errors.Is(err, db.ErrNotFound) {
				t.Errorf("GetLinkByOwner(1) = %v, want ErrNotFound", err)
			}
			// The same browser can still link once Tesla behaves (the control case).
			signIn(t, e, b, "ann@example.com")
		})
	}
}

// docs/security.md, "ID token": after the provider rotates its keys, the new kid is fetched and accepted.
func TestSecurityKeyRotation(t *testing.T) {
	t.Parallel()
	for _, dropOld := range []bool{false, true} {
		t.Run(map[bool]string{false: "keep old", true: "drop old"}[dropOld], func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t, testenv.Options{})
			signIn(t, e, e.Browser(), "first@example.com")
			if n := e.Sim.Calls("jwks"); n != 1 {
				t.Fatalf("%d JWKS fetches after the first login, want 1 (cached)", n)
			}
			e.Sim.RotateKeys(dropOld)
			signIn(t, e, e.Browser(), "second@example.com")
			if n := e.Sim.Calls("jwks"); n != 2 {
				t.Errorf("%d JWKS fetches, want 2 (one refetch for the new kid)", n)
			}
			signIn(t, e, e.Browser(), "third@example.com")
			if n := e.Sim.Calls("jwks"); n != 2 {
				t.Errorf("%d JWKS fetches after a third login, want 2", n)
			}
		})
	}
}

// docs/security.md, "ID token": a flood of unknown kids does not make us fetch the JWKS each time.
func TestSecurityUnknownKIDFlood(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	signIn(t, e, e.Browser(), "first@example.com")
	for range 6 {
		b := e.Browser()
		cb := b.Consent(b.StartLogin(vehicleScopes), "mallory@example.com", nil, true)
		e.Sim.Inject(teslasim.FaultIDTokenUnknownKID, teslasim.FaultOptions{Count: 1})
		res, _ := b.Get(cb)
		if res.StatusCode < 400 || setsSession(res) {
			t.Fatalf("unknown kid accepted: %d", res.StatusCode)
		}
	}
	if n := e.Sim.Calls("jwks"); n > 2 {
		t.Errorf("%d JWKS fetches for 6 unknown kids within seconds, want at most 2", n)
	}
	if n := countRows(t, e, "links"); n != 1 {
		t.Errorf("%d links, want only the first", n)
	}
}

// docs/security.md, "ID token": a refresh that returns an ID token for another iss or sub
// is rejected; the link needs re-linking and the caller gets a distinct error.
func TestSecurityRefreshIDTokenMismatch(t *testing.T) {
	t.Parallel()
	t.Run("another iss", func(t *testing.T) {
		t.Parallel()
		e := testenv.New(t, testenv.Options{})
		signIn(t, e, e.Browser(), "ann@example.com")
		l := linkOf(t, e, 1)
		e.Sim.Inject(teslasim.FaultIDTokenWrongIssuer, teslasim.FaultOptions{Count: 1, Endpoint: "token.refresh_token"})
		_, err := e.Links.AccessToken(context.Background(), l.ID, link.TokenRequest{ForceRefresh: true})
		if !errors.Is(err, link.ErrReauthRequired) {
			t.Fatalf("AccessToken = %v, want ErrReauthRequired", err)
		}
		if n := e.Sim.Calls("token.refresh_token"); n != 1 {
			t.Fatalf("%d refreshes", n)
		}
		after := linkOf(t, e, 1)
		if after.Status != db.StatusNeedsReauth || string(after.RefreshTokenSealed) != string(l.RefreshTokenSealed) {
			t.Errorf("link after mismatch: status %s, tokens replaced %v", after.Status, string(after.RefreshTokenSealed) != string(l.RefreshTokenSealed))
		}
	})
	t.Run("another sub", func(t *testing.T) {
		// The simulator has no fault for this; instead link B is given link A's
		// refresh token (sealed correctly for B's row), so Tesla answers B's
		// refresh with A's ID token.
		t.Parallel()
		e := testenv.New(t, testenv.Options{})
		signIn(t, e, e.Browser(), "ann@example.com")
		signIn(t, e, e.Browser(), "bob@example.com")
		a, b := linkOf(t, e, 1), linkOf(t, e, 2)
		if a.OwnerSub == b.OwnerSub {
			t.Fatal("owners share a sub")
		}
		rtA, err := e.Keys.Open(a.RefreshTokenSealed, []byte("teslalink/link/"+a.ID+"/refresh_token"))
		if err != nil {
			t.Fatalf("open A's refresh token: %v", err)
		}
		resealed, err := e.Keys.Seal(rtA, []byte("teslalink/link/"+b.ID+"/refresh_token"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sqlConn(t, e).Exec(context.Background(), `UPDATE links SET refresh_token_sealed = $1 WHERE id = $2`, resealed, b.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.Links.AccessToken(context.Background(), b.ID, link.TokenRequest{ForceRefresh: true})
		if !errors.Is(err, link.ErrReauthRequired) {
			t.Fatalf("AccessToken = %v, want ErrReauthRequired", err)
		}
		if n := e.Sim.Calls("token.refresh_token"); n != 1 {
			t.Fatalf("%d refreshes, want 1 (Tesla must have answered with A's ID token)", n)
		}
		if got := linkOf(t, e, 2); got.Status != db.StatusNeedsReauth {
			t.Errorf("B's link: %s", got.Status)
		}
		if got := linkOf(t, e, 1); got.Status != db.StatusActive {
			t.Errorf("A's link: %s", got.Status)
		}
	})
}

func linkOf(t *testing.T, e *testenv.Env, ownerID int64) *db.Link {
	t.Helper()
	l, err := e.Store.GetLinkByOwner(context.Background(), ownerID)
	if err != nil {
		t.Fatalf("link of owner %d: %v", ownerID, err)
	}
	return l
}

// docs/security.md, "ID token", at the page: a link whose refresh came back for another
// account shows "needs re-linking" to its owner, with no vehicle call.
func TestSecurityRefreshMismatchOnAccountPage(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	signIn(t, e, b, "ann@example.com")
	vehicles := e.Sim.Calls("vehicles")
	e.Sim.Inject(teslasim.FaultIDTokenWrongIssuer, teslasim.FaultOptions{Count: 1, Endpoint: "token.refresh_token"})
	e.Sim.Clock().Advance(8 * time.Hour) // the access token expires: the page must refresh
	res, body := b.Get("/account")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("account: %d", res.StatusCode)
	}
	if e.Sim.Calls("token.refresh_token") != 1 {
		t.Fatalf("no refresh happened")
	}
	if e.Sim.Calls("vehicles") != vehicles {
		t.Error("vehicles listed with a rejected refresh")
	}
	if l := linkOf(t, e, 1); l.Status != db.StatusNeedsReauth {
		t.Errorf("status %s", l.Status)
	}
	if !strings.Contains(body, "sign in again") && !strings.Contains(body, "Connect again") && !strings.Contains(body, "Reconnect") {
		t.Errorf("account page does not ask to link again")
	}
}
