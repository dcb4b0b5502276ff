package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"teslalink/internal/testenv"
)

// The support reference on pages and in the log is always ours: a client's
// X-Request-Id is never shown or logged as the reference (see
// docs/security.md, "Request ids").
func TestRequestIDIsGeneratedByUs(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		e := testenv.New(t, testenv.Options{TrustProxy: trust})
		b := e.Browser()
		for _, in := range []string{"SUPPORT-REF-chosen-by-client", strings.Repeat("A", 64<<10), "evil\" ref=x"} {
			req, _ := http.NewRequest(http.MethodGet, e.URL+"/no-such-page", nil)
			req.Header.Set("X-Request-Id", in)
			res, body := b.Do(req)
			ref := res.Header.Get("X-Request-Id")
			if ref == "" || ref == in || len(ref) > 16 {
				t.Fatalf("trust=%v: response reference %.40q, want one of our own", trust, ref)
			}
			if !strings.Contains(body, ref) {
				t.Errorf("trust=%v: error page does not show our reference %q", trust, ref)
			}
			if strings.Contains(body, in) {
				t.Errorf("trust=%v: error page shows the client's id %.40q", trust, in)
			}
			if !strings.Contains(e.Logs.String(), `"ref":"`+ref+`"`) {
				t.Errorf("trust=%v: log has no line with ref %q", trust, ref)
			}
		}
		logs := e.Logs.String()
		if strings.Contains(logs, `"ref":"SUPPORT-REF`) || strings.Contains(logs, strings.Repeat("A", 100)) {
			t.Errorf("trust=%v: a client's id was logged as the reference or at length", trust)
		}
		upstream := strings.Contains(logs, `"upstream_request_id":"SUPPORT-REF-chosen-by-client"`)
		if upstream != trust {
			t.Errorf("trust=%v: upstream_request_id logged = %v", trust, upstream)
		}
		if strings.Contains(logs, `evil\" ref=x`) {
			t.Errorf("trust=%v: a malformed upstream id was logged", trust)
		}
	}
}
