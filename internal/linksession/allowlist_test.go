package linksession

import "testing"

// TestLoopbackAllowlist: `web dev` allows loopback return URLs on any port
// and still refuses every other host and every tricky form.
func TestLoopbackAllowlist(t *testing.T) {
	a := LoopbackAllowlist(nil)
	for _, ok := range []string{"http://127.0.0.1:3000/done", "http://localhost:8081/x?y=1", "https://[::1]:8443/", "http://127.0.0.2/cb"} {
		if _, err := a.Check(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"https://example.com/done", "http://user@127.0.0.1:3000/", "//127.0.0.1:3000/",
		`http://127.0.0.1:3000\@evil.example/`, "http://127.0.0.1:3000/a/../b", "http://localhost.evil.example/",
		"ftp://127.0.0.1/"} {
		if _, err := a.Check(bad); err == nil {
			t.Errorf("%s allowed", bad)
		}
	}
	var none *Allowlist
	if !none.Empty() || !(&Allowlist{}).Empty() || a.Empty() {
		t.Error("Empty is wrong")
	}
}
