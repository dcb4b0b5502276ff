package teslasim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
)

var b64 = base64.RawURLEncoding

// signingKey is one RS256 key with its key id.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// keySet holds the current signing key, the keys published in the JWKS, and
// every key the sim ever used (to verify its own access tokens).
type keySet struct {
	mu        sync.RWMutex
	current   *signingKey
	published []*signingKey
	all       map[string]*signingKey
	unknown   *signingKey // lazily created key never published (FaultIDTokenUnknownKID)
}

func newSigningKey(k *rsa.PrivateKey) (*signingKey, error) {
	if k == nil {
		var err error
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("teslasim: generate RSA key: %w", err)
		}
	}
	// kid: a digest of the modulus, so the same key always has the same kid.
	sum := sha256.Sum256(k.N.Bytes())
	return &signingKey{kid: b64.EncodeToString(sum[:12]), key: k}, nil
}

func newKeySet(k *rsa.PrivateKey) (*keySet, error) {
	sk, err := newSigningKey(k)
	if err != nil {
		return nil, err
	}
	return &keySet{current: sk, published: []*signingKey{sk}, all: map[string]*signingKey{sk.kid: sk}}, nil
}

func (ks *keySet) signer() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.current
}

func (ks *keySet) rotate(dropOld bool) error {
	sk, err := newSigningKey(nil)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.current = sk
	ks.all[sk.kid] = sk
	if dropOld {
		ks.published = []*signingKey{sk}
	} else {
		ks.published = append([]*signingKey{sk}, ks.published...)
	}
	return nil
}

func (ks *keySet) unknownKey() (*signingKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.unknown == nil {
		sk, err := newSigningKey(nil)
		if err != nil {
			return nil, err
		}
		sk.kid = "unknown-" + sk.kid
		ks.unknown = sk
	}
	return ks.unknown, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (ks *keySet) jwks() map[string][]jwk {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	keys := make([]jwk, 0, len(ks.published))
	for _, k := range ks.published {
		keys = append(keys, jwk{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.kid,
			N: b64.EncodeToString(k.key.N.Bytes()),
			E: b64.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
		})
	}
	return map[string][]jwk{"keys": keys}
}

// signJWT returns a compact RS256 JWS of claims signed by sk.
func signJWT(sk *signingKey, claims map[string]any) (string, error) {
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "kid": sk.kid, "typ": "JWT"})
	if err != nil {
		return "", fmt.Errorf("teslasim: marshal JWT header: %w", err)
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("teslasim: marshal JWT claims: %w", err)
	}
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, sk.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("teslasim: sign JWT: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// unsignedJWT returns an alg=none token.
func unsignedJWT(claims map[string]any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("teslasim: marshal JWT claims: %w", err)
	}
	return b64.EncodeToString(hdr) + "." + b64.EncodeToString(body) + ".", nil
}

// corruptSignature flips bits in a compact JWS's signature.
func corruptSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		return tok + "AA"
	}
	for j := range sig[:8] {
		sig[j] ^= 0xA5
	}
	return tok[:i+1] + b64.EncodeToString(sig)
}

var errBadJWT = errors.New("malformed or unverifiable token")

// verifyJWT checks an RS256 token against every key the sim ever signed with
// and returns its claims.
func (ks *keySet) verifyJWT(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errBadJWT
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, errBadJWT
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" {
		return nil, errBadJWT
	}
	ks.mu.RLock()
	sk := ks.all[hdr.Kid]
	ks.mu.RUnlock()
	if sk == nil {
		return nil, errBadJWT
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, errBadJWT
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&sk.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return nil, errBadJWT
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, errBadJWT
	}
	var claims map[string]any
	if json.Unmarshal(pb, &claims) != nil {
		return nil, errBadJWT
	}
	return claims, nil
}
