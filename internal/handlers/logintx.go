package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"

	"teslalink/internal/session"
)

// loginTTL bounds a login transaction: from POST /connect to the callback.
const loginTTL = 10 * time.Minute

// loginTx is one login transaction, kept in a short-lived encrypted,
// authenticated cookie bound to the browser that started it (see docs/security.md,
// "Login transaction").
type loginTx struct {
	State    string
	Nonce    string
	Verifier string
	Scopes   []string
	ReturnTo string
	Created  time.Time
}

type loginCookies struct {
	name   string
	secure bool
	codecs []securecookie.Codec
}

func newLoginCookies(keys [][]byte, secure bool) *loginCookies {
	name := "teslalink_login"
	if secure {
		name = "__Host-teslalink_login"
	}
	return &loginCookies{name: name, secure: secure, codecs: session.Codecs(keys, "login", int(loginTTL.Seconds()))}
}

func (l *loginCookies) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: l.name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: l.secure,
		SameSite: http.SameSiteLaxMode}
}

func (l *loginCookies) set(w http.ResponseWriter, tx *loginTx) error {
	v, err := securecookie.EncodeMulti(l.name, tx, l.codecs...)
	if err != nil {
		return fmt.Errorf("encode login cookie: %w", err)
	}
	http.SetCookie(w, l.cookie(v, int(loginTTL.Seconds())))
	return nil
}

// take reads the login transaction and clears the cookie: it is single use.
// now is the server's clock (the same one that stamped tx.Created).
func (l *loginCookies) take(w http.ResponseWriter, r *http.Request, now time.Time) (*loginTx, bool) {
	c, err := r.Cookie(l.name)
	if err != nil {
		return nil, false
	}
	http.SetCookie(w, l.cookie("", -1))
	var tx loginTx
	if err := securecookie.DecodeMulti(l.name, c.Value, &tx, l.codecs...); err != nil {
		return nil, false
	}
	if now.Sub(tx.Created) > loginTTL || tx.State == "" || tx.Nonce == "" || tx.Verifier == "" {
		return nil, false
	}
	return &tx, true
}

// randomToken returns n random bytes, base64url-encoded (CSPRNG).
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) []byte {
	h := sha256.Sum256([]byte("login-state:" + state))
	return h[:]
}
