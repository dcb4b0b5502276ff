package seal

import (
	"bytes"
	"testing"
)

// FuzzOpen: opening any blob never panics, and only a blob this keyring
// sealed for exactly this associated data opens (no forgery).
func FuzzOpen(f *testing.F) {
	spec, _ := GenerateKey("k1")
	k, err := ParseKeys(spec)
	if err != nil {
		f.Fatal(err)
	}
	ad := []byte("teslalink/link/00000000-0000-0000-0000-000000000001/access_token")
	genuine, err := k.Seal([]byte("access-token-value"), ad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 'k', '1'})
	f.Fuzz(func(t *testing.T, blob []byte) {
		pt, err := k.Open(blob, ad)
		if err != nil {
			return
		}
		if !bytes.Equal(blob, genuine) || string(pt) != "access-token-value" {
			t.Fatalf("a blob this keyring did not seal opened: %x", blob)
		}
		if _, err := k.Open(blob, append(bytes.Clone(ad), 'x')); err == nil {
			t.Fatal("a blob opened under other associated data")
		}
	})
}
