package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

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
