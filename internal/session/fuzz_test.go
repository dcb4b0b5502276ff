package session

import (
	"bytes"
	"testing"

	"github.com/gorilla/securecookie"
)

// FuzzSessionCookie: the session cookie decoder never panics and accepts
// only a value this server signed (no forgery of a session id).
func FuzzSessionCookie(f *testing.F) {
	codecs := Codecs([][]byte{bytes.Repeat([]byte{9}, 32)}, "session", 0)
	genuine, err := securecookie.EncodeMulti("__Host-teslalink", "session-id-1", codecs...)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add("")
	f.Add("MTcwMDAwMDAwMHxhYmN8ZGVm")
	f.Fuzz(func(t *testing.T, value string) {
		var id string
		if err := securecookie.DecodeMulti("__Host-teslalink", value, &id, codecs...); err != nil {
			return
		}
		// Base64 lets a few strings decode to the signed bytes; what must
		// never happen is a session id this server did not sign.
		if id != "session-id-1" {
			t.Fatalf("a forged session cookie decoded: %q → %q", value, id)
		}
	})
}
