package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/gorilla/securecookie"

	"teslalink/internal/link"
	"teslalink/internal/session"
)

// loginTTL bounds the login cookie's life; the link service checks the
// login state's own age. The cookie is encrypted, authenticated and bound
// to the browser that started the login (see docs/security.md, "Login
// transaction").
const loginTTL = link.LoginTTL

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

func (l *loginCookies) set(w http.ResponseWriter, tx *link.LoginState) error {
	v, err := securecookie.EncodeMulti(l.name, tx, l.codecs...)
	if err != nil {
		return fmt.Errorf("encode login cookie: %w", err)
	}
	http.SetCookie(w, l.cookie(v, int(loginTTL.Seconds())))
	return nil
}

// take reads the login state and clears the cookie: it is single use.
// It returns nil when there is none or it cannot be read.
func (l *loginCookies) take(w http.ResponseWriter, r *http.Request) *link.LoginState {
	c, err := r.Cookie(l.name)
	if err != nil {
		return nil
	}
	http.SetCookie(w, l.cookie("", -1))
	var st link.LoginState
	if err := securecookie.DecodeMulti(l.name, c.Value, &st, l.codecs...); err != nil {
		return nil
	}
	return &st
}

// randomToken returns n random bytes, base64url-encoded (CSPRNG).
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
