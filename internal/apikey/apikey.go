// Package apikey makes and checks the API keys of the team's backends:
// "tlk_" + base64url(32 random bytes). Only a SHA-256 of the whole key is
// stored, plus a short prefix that operators can recognise.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// API scopes a key may hold.
const (
	ScopeLinksRead   = "links:read"
	ScopeTokensIssue = "tokens:issue"
	ScopeLinksDelete = "links:delete"
	ScopeOwnersErase = "owners:erase"
	ScopeLinksCreate = "links:create" // start link sessions and claim them
)

// Scopes lists every API scope.
var Scopes = []string{ScopeLinksRead, ScopeTokensIssue, ScopeLinksDelete, ScopeOwnersErase, ScopeLinksCreate}

// DefaultScopes are given to a new key when none are asked for.
var DefaultScopes = []string{ScopeLinksRead, ScopeTokensIssue}

// Prefix starts every key.
const Prefix = "tlk_"

// prefixLen is how many characters after Prefix are kept for display.
const prefixLen = 8

// Key is a freshly generated key. Secret is shown once, never stored.
type Key struct {
	Secret  string
	Display string // Prefix + first characters, safe to store and show
	Hash    []byte
}

// New generates a key.
func New() (Key, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("generate api key: %w", err)
	}
	secret := Prefix + base64.RawURLEncoding.EncodeToString(b)
	return Key{Secret: secret, Display: secret[:len(Prefix)+prefixLen], Hash: Hash(secret)}, nil
}

// Hash is what the database stores and looks keys up by.
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// WellFormed reports whether s looks like a key (cheap check before any lookup).
func WellFormed(s string) bool {
	if !strings.HasPrefix(s, Prefix) || len(s) != len(Prefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(Prefix):])
	return err == nil
}

// ParseScopes splits a comma- or space-separated list and checks each scope.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, sc := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(Scopes, sc) {
			return nil, fmt.Errorf("unknown API scope %q (known: %s)", sc, strings.Join(Scopes, ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no API scope given (known: %s)", strings.Join(Scopes, ", "))
	}
	return out, nil
}
