// Package seal encrypts small secrets (Tesla tokens) at rest with AES-256-GCM
// under versioned keys. Each sealed blob carries the id of the key that sealed
// it, and associated data binds it to its row and purpose, so a ciphertext
// copied to another row or column fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

const version byte = 1

var (
	// ErrUnknownKey means the blob was sealed with a key that is not configured.
	ErrUnknownKey = errors.New("seal: unknown key id")
	// ErrOpen means the blob is malformed, was tampered with, or belongs to other associated data.
	ErrOpen = errors.New("seal: cannot open sealed data")
)

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Key is one versioned AES-256 key.
type Key struct {
	ID     string
	Secret []byte
}

// Keyring holds the configured keys; the primary key seals, all keys open.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
	order   []string
}

// New builds a keyring; the first key is the primary.
func New(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys given")
	}
	kr := &Keyring{primary: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("key %d: id must be 1-32 characters of A-Z a-z 0-9 _ . -", i+1)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("key %q: must be %d bytes, got %d", k.ID, KeySize, len(k.Secret))
		}
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("key %q: listed twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
		kr.order = append(kr.order, k.ID)
	}
	return kr, nil
}

// ParseKeys parses "id:base64key,id2:base64key"; the first key is the primary.
// Error messages never contain key material.
func ParseKeys(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no keys given")
	}
	var keys []Key
	for i, part := range strings.Split(s, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("key %d: want id:base64key", i+1)
		}
		secret, err := DecodeBase64(b64)
		if err != nil {
			return nil, fmt.Errorf("key %q: not valid base64", id)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return New(keys)
}

// DecodeBase64 accepts standard or URL-safe base64, padded or not: how
// operators paste keys varies, the bytes do not.
func DecodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// GenerateKey returns a new random key in the "id:base64" form ParseKeys reads.
func GenerateKey(id string) (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// PrimaryID is the id of the key new seals use.
func (k *Keyring) PrimaryID() string { return k.primary }

// IDs lists the configured key ids, primary first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.order...) }

// Seal encrypts plaintext under the primary key with a fresh random nonce.
// Layout: version(1) | len(id)(1) | id | nonce(12) | ciphertext+tag.
func (k *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	aead := k.aeads[k.primary]
	id := k.primary
	out := make([]byte, 0, 2+len(id)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, version, byte(len(id)))
	out = append(out, id...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, k.fullAD(id, ad)), nil
}

// fullAD adds the key id to the caller's associated data, so the id in the
// header cannot be swapped either.
func (k *Keyring) fullAD(id string, ad []byte) []byte {
	full := make([]byte, 0, len(id)+1+len(ad))
	full = append(full, id...)
	full = append(full, 0)
	return append(full, ad...)
}

// KeyID returns the id of the key that sealed blob.
func KeyID(blob []byte) (string, error) {
	if len(blob) < 2 || blob[0] != version || len(blob) < 2+int(blob[1]) {
		return "", ErrOpen
	}
	return string(blob[2 : 2+int(blob[1])]), nil
}

// Open decrypts blob sealed with the same associated data.
func (k *Keyring) Open(blob, ad []byte) ([]byte, error) {
	id, err := KeyID(blob)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	rest := blob[2+len(id):]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrOpen
	}
	nonce, ct := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, k.fullAD(id, ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
