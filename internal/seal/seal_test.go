package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testKeyring(t *testing.T, spec ...string) *Keyring {
	t.Helper()
	var parts []string
	for _, id := range spec {
		k, err := GenerateKey(id)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, k)
	}
	kr, err := ParseKeys(strings.Join(parts, ","))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "k1")
	blob, err := kr.Seal([]byte("NA_refresh"), []byte("link/1/refresh"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("NA_refresh")) {
		t.Fatal("plaintext visible in blob")
	}
	pt, err := kr.Open(blob, []byte("link/1/refresh"))
	if err != nil || string(pt) != "NA_refresh" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if id, _ := KeyID(blob); id != "k1" {
		t.Fatalf("KeyID = %q", id)
	}
}

func TestTamperAndSwappedRow(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "k1")
	blob, _ := kr.Seal([]byte("secret"), []byte("link/1/refresh"))
	for i := range blob {
		c := bytes.Clone(blob)
		c[i] ^= 0x01
		if _, err := kr.Open(c, []byte("link/1/refresh")); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	if _, err := kr.Open(blob, []byte("link/2/refresh")); !errors.Is(err, ErrOpen) {
		t.Fatalf("other row opened: %v", err)
	}
	if _, err := kr.Open(blob, []byte("link/1/access")); !errors.Is(err, ErrOpen) {
		t.Fatalf("other purpose opened: %v", err)
	}
	if _, err := kr.Open(blob[:10], []byte("link/1/refresh")); err == nil {
		t.Fatal("truncated blob opened")
	}
}

func TestUnknownKeyAndRotation(t *testing.T) {
	t.Parallel()
	oldSpec, _ := GenerateKey("old")
	newSpec, _ := GenerateKey("new")
	old, err := ParseKeys(oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := old.Seal([]byte("secret"), []byte("ad"))

	onlyNew, _ := ParseKeys(newSpec)
	if _, err := onlyNew.Open(blob, []byte("ad")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}

	both, err := ParseKeys(newSpec + "," + oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := both.Open(blob, []byte("ad")); err != nil || string(pt) != "secret" {
		t.Fatalf("old blob with rotated ring: %q %v", pt, err)
	}
	fresh, _ := both.Seal([]byte("secret"), []byte("ad"))
	if id, _ := KeyID(fresh); id != "new" {
		t.Fatalf("new seals should use primary, got %q", id)
	}
	if both.PrimaryID() != "new" {
		t.Fatalf("PrimaryID = %q", both.PrimaryID())
	}
}

func TestNonceUniqueness(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "k1")
	seen := make(map[string]bool)
	for i := 0; i < 20000; i++ {
		blob, err := kr.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(blob[2+2 : 2+2+12])
		if seen[nonce] {
			t.Fatalf("nonce repeated after %d seals", i)
		}
		seen[nonce] = true
	}
}

func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	good, _ := GenerateKey("a")
	secret := strings.SplitN(good, ":", 2)[1]
	cases := map[string]string{
		"":                 "no keys",
		"nocolon":          "want id:base64key",
		"a:!!!":            "not valid base64",
		"a:c2hvcnQ=":       "must be 32 bytes",
		good + "," + good:  "listed twice",
		"bad id:" + secret: "id must be",
	}
	for in, want := range cases {
		_, err := ParseKeys(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks key material: %v", err)
		}
	}
}
