package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"teslalink/internal/link"
)

// FuzzLoginCookie: the callback's login-state cookie and query are read
// without panicking, and a cookie this server did not sign never yields a
// login state (no forgery).
func FuzzLoginCookie(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	lc := newLoginCookies([][]byte{key}, true)
	rec := httptest.NewRecorder()
	want := &link.LoginState{State: "s", Nonce: "n", Verifier: "v", Scopes: []string{"openid"}}
	if err := lc.set(rec, want); err != nil {
		f.Fatal(err)
	}
	genuine := rec.Result().Cookies()[0].Value
	f.Add(genuine, "state=s&code=c&issuer=https%3A%2F%2Fauth.tesla.com%2Foauth2%2Fv3")
	f.Add("", "")
	f.Add("MTIzNDU2Nzg5MA==", "state=%zz;code")
	f.Fuzz(func(t *testing.T, value, query string) {
		q, _ := url.ParseQuery(query)
		_ = q.Get("state")
		req := httptest.NewRequest(http.MethodGet, "/auth/tesla/callback", nil)
		req.AddCookie(&http.Cookie{Name: lc.name, Value: value})
		st := lc.take(httptest.NewRecorder(), req)
		// Base64 lets a few strings decode to the signed bytes; what must
		// never happen is a login state this server did not write.
		if st != nil && !reflect.DeepEqual(st, want) {
			t.Fatalf("a cookie this server did not sign was accepted: %q -> %+v", value, st)
		}
	})
}

// FuzzAPIInput: token request bodies, query strings and link ids are checked
// without panicking; what is accepted is only what the API documents.
func FuzzAPIInput(f *testing.F) {
	f.Add(`{"force_refresh": true, "scopes": ["vehicle_device_data"]}`, "status=active&limit=10", "7C9E6679-7425-40DE-944B-E07FC1F90AE7")
	f.Add(`{"force_refresh": 1}`, "owner_sub=%00", "x")
	f.Add(`{} {}`, "ownersub=a&status=active&status=revoked", "")
	e := echo.New()
	known := []string{"status", "owner_sub", "external_ref", "cursor", "limit"}
	f.Fuzz(func(t *testing.T, body, query, id string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.ContentLength = int64(len(body))
		if _, err := readTokenRequest(req); err == nil && strings.TrimSpace(body) != "" && !json.Valid([]byte(body)) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}

		r := httptest.NewRequest(http.MethodGet, "/api/v1/links", nil)
		r.URL.RawQuery = query
		c := e.NewContext(r, httptest.NewRecorder())
		passed := false
		_ = allowQuery(known...)(func(echo.Context) error { passed = true; return nil })(c)
		if passed {
			q, err := url.ParseQuery(query)
			if err != nil {
				t.Fatalf("malformed query accepted: %q", query)
			}
			for name, vs := range q {
				if len(vs) != 1 || !contains(known, name) {
					t.Fatalf("query %q accepted with %q", query, name)
				}
			}
		}
		_ = validOwnerSub(query)

		c = e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		c.SetParamNames("id")
		c.SetParamValues(id)
		_ = canonicalLinkID(func(c echo.Context) error {
			if got := c.Param("id"); got != id && (got != strings.ToLower(got) || !strings.EqualFold(got, id)) {
				t.Fatalf("id %q rewritten to %q", id, got)
			}
			return nil
		})(c)
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
