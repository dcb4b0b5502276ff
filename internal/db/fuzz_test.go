package db

import (
	"strings"
	"testing"
)

// FuzzParseLinkID: the path parameter and cursor parser never panics, and
// every id it accepts has one canonical form that names the same bytes.
func FuzzParseLinkID(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		b, ok := ParseLinkID(s)
		if !ok {
			return
		}
		canon := FormatLinkID(b)
		if !strings.EqualFold(canon, s) || canon != strings.ToLower(canon) {
			t.Fatalf("%q parsed, canonical form %q", s, canon)
		}
		if b2, ok := ParseLinkID(canon); !ok || b2 != b {
			t.Fatalf("canonical form %q does not parse back", canon)
		}
	})
}
