package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"teslalink/internal/testenv"
)

// problemDetail returns a problem's detail.
func problemDetail(t *testing.T, body []byte) string {
	t.Helper()
	var p struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %s", body)
	}
	return p.Detail
}

// Unknown or repeated query parameters are refused with a 400 naming them:
// a typo must never widen a listing to every owner's links.
func TestAPIRefusesUnknownQueryParameters(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ada := linkOwner(t, e, "ada@example.com")
	linkOwner(t, e, "bob@example.com")
	a := newAPI(t, e, newKey(t, e, "dispatch"))
	for q, name := range map[string]string{
		"owner_email=ada@example.com":                   "owner_email",
		"ownersub=" + e.Sim.OwnerSub("ada@example.com"): "ownersub",
		"limit=10&Status=active":                        "Status",
		"status=active&status=revoked":                  "status",
		"owner_sub=a&owner_sub=b":                       "owner_sub",
	} {
		res, body := a.do(http.MethodGet, "/api/v1/links?"+q, "")
		wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
		if d := problemDetail(t, body); !strings.Contains(d, name) {
			t.Errorf("?%s: detail %q does not name %q", q, d, name)
		}
	}
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/links/" + ada.ID + "?fields=all", ""},
		{http.MethodPost, "/api/v1/links/" + ada.ID + "/token?force_refresh=true", ""},
		{http.MethodDelete, "/api/v1/links/" + ada.ID + "?dry_run=1", ""},
	} {
		res, body := a.do(r.method, r.path, r.body)
		wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
	}
	// The link was not deleted by the refused request.
	if _, res, body := a.token(ada.ID, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("token after refused requests: %d %s", res.StatusCode, body)
	}
	// Known parameters still work.
	res, body := a.do(http.MethodGet, "/api/v1/links?owner_sub="+url.QueryEscape(e.Sim.OwnerSub("ada@example.com"))+"&status=active&limit=5", "")
	if res.StatusCode != http.StatusOK || strings.Count(string(body), `"id"`) != 1 {
		t.Fatalf("filtered list: %d %s", res.StatusCode, body)
	}
}

// A link id in upper case names the same link as in lower case: the same
// answer every time, whether the token cache has the link or not.
func TestAPILinkIDCaseGetsOneAnswer(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	l := linkOwner(t, e, "case@example.com")
	a := newAPI(t, e, newKey(t, e, "dispatch"))
	upper := strings.ToUpper(l.ID)
	for i := range 4 {
		tok, res, body := a.token(upper, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("token %d for the upper-case id: %d %s", i+1, res.StatusCode, body)
		}
		if tok.LinkID != l.ID {
			t.Errorf("link_id %q, want the canonical %q", tok.LinkID, l.ID)
		}
		res, body = a.do(http.MethodGet, "/api/v1/links/"+upper, "")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"`+l.ID+`"`) {
			t.Fatalf("get %d for the upper-case id: %d %s", i+1, res.StatusCode, body)
		}
	}
	if logs := e.Logs.String(); strings.Contains(logs, "open access_token") || strings.Contains(logs, `"status":500`) {
		t.Errorf("a false tampering alarm or a 500 was logged")
	}
	// The cursor is canonicalised too.
	res, body := a.do(http.MethodGet, "/api/v1/links?cursor="+strings.ToUpper("00000000-0000-0000-0000-00000000000a"), "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("upper-case cursor: %d %s", res.StatusCode, body)
	}
}

// Odd input never gives a 500: an owner_sub with NUL or invalid UTF-8 is a
// 400 problem; an over-long return_to on /connect is a friendly 400 page.
func TestOddInputIsA400(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := newAPI(t, e, newKey(t, e, "dispatch"))
	for _, v := range []string{"%00", "abc%00def", "%FF", "%C3%28", "a%01b", strings.Repeat("x", 1000)} {
		res, body := a.do(http.MethodGet, "/api/v1/links?owner_sub="+v, "")
		wantProblem(t, res, body, http.StatusBadRequest, "invalid-request")
		if d := problemDetail(t, body); !strings.Contains(d, "owner_sub") {
			t.Errorf("owner_sub=%.20s: detail %q does not name owner_sub", v, d)
		}
	}
	b := e.Browser()
	for _, n := range []int{2048, 5000, 60000} {
		res, body := b.PostForm("/connect", url.Values{"scope": {"user_data"}, "return_to": {"/account?" + strings.Repeat("a", n)}})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("return_to of %d bytes: %d %s, want a friendly 400 page", n, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, "/connect") {
			t.Errorf("return_to of %d bytes: the page offers no way back", n)
		}
	}
	// A normal return_to still works.
	if res, _ := b.PostForm("/connect", url.Values{"scope": {"user_data"}, "return_to": {"/account"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("normal return_to: %d", res.StatusCode)
	}
}
