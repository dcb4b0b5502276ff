// Package session keeps browser sessions server-side in PostgreSQL behind
// the gorilla/sessions Store interface. The cookie carries only a random,
// signed id; the row holds the values, so logout and revoke really end a
// session, and idle and absolute timeouts are enforced on the server.
package session

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"teslalink/internal/db"
)

// Keys of the values the handlers keep in a session.
const (
	KeyOwnerID = "owner_id"
	KeyCSRF    = "csrf"
)

// Options configure the store.
type Options struct {
	CookieName  string        // "__Host-teslalink" in production
	Secure      bool          // false only for plain-HTTP localhost in `web dev`
	IdleTimeout time.Duration // default 30 minutes
	MaxAge      time.Duration // absolute lifetime, default 12 hours
	Now         func() time.Time
}

// Store is a gorilla/sessions Store backed by the sessions table.
type Store struct {
	db     *db.Store
	codecs []securecookie.Codec
	opts   Options
}

// New builds a Store. keys are the configured SESSION_KEYS (decoded, at
// least 32 bytes each); the first signs, the others still verify.
func New(store *db.Store, keys [][]byte, opts Options) (*Store, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: no keys")
	}
	for i, k := range keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("session: key %d is %d bytes; each key needs at least 32 random bytes", i+1, len(k))
		}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CookieName == "" {
		opts.CookieName = "__Host-teslalink"
	}
	return &Store{db: store, codecs: Codecs(keys, "session", 0), opts: opts}, nil
}

// Codecs derives one securecookie codec (HMAC-SHA256 + AES-256) per key, for
// the given purpose, so the session and login cookies never share keys.
// maxAge (seconds) bounds the signed timestamp; 0 leaves lifetimes to the caller.
func Codecs(keys [][]byte, purpose string, maxAge int) []securecookie.Codec {
	codecs := make([]securecookie.Codec, 0, len(keys))
	for _, k := range keys {
		c := securecookie.New(derive(k, purpose+"/hash"), derive(k, purpose+"/block"))
		c.MaxAge(maxAge)
		codecs = append(codecs, c)
	}
	return codecs
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// CookieName is the session cookie's name.
func (s *Store) CookieName() string { return s.opts.CookieName }

// Get returns the request's session, cached per request.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named by the request's cookie, or a new empty one
// when there is none, or it is unknown, expired, idle too long or forged.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.cookieOptions()
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return sess, nil
	}
	row, err := s.db.GetSession(r.Context(), hashID(id))
	if errors.Is(err, db.ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, fmt.Errorf("load session: %w", err)
	}
	now := s.opts.Now()
	if now.After(row.ExpiresAt) || now.Sub(row.LastSeenAt) > s.opts.IdleTimeout {
		_ = s.db.DeleteSession(r.Context(), row.IDHash)
		return sess, nil
	}
	if len(row.Data) > 0 {
		if err := gob.NewDecoder(bytes.NewReader(row.Data)).Decode(&sess.Values); err != nil {
			return sess, nil
		}
	}
	if now.Sub(row.LastSeenAt) > time.Minute {
		// Keep the idle clock honest without writing on every request.
		if err := s.db.TouchSession(r.Context(), row.IDHash, now); err != nil {
			return sess, fmt.Errorf("touch session: %w", err)
		}
	}
	sess.ID = id
	sess.IsNew = false
	return sess, nil
}

// Save writes the session row and the cookie. A negative MaxAge deletes both.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.db.DeleteSession(ctx, hashID(sess.ID)); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", s.expiredOptions()))
		return nil
	}
	data, err := encodeValues(sess.Values)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	if sess.ID == "" {
		id, err := newID()
		if err != nil {
			return err
		}
		owner, _ := sess.Values[KeyOwnerID].(int64)
		if err := s.db.CreateSession(ctx, db.Session{IDHash: hashID(id), OwnerID: owner, Data: data,
			CreatedAt: now, ExpiresAt: now.Add(s.opts.MaxAge)}); err != nil {
			return err
		}
		sess.ID = id
	} else if err := s.db.UpdateSession(ctx, hashID(sess.ID), data, now); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(sess.Name(), sess.ID, s.codecs...)
	if err != nil {
		return fmt.Errorf("encode session cookie: %w", err)
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, s.cookieOptions()))
	return nil
}

// Renew deletes the session's current row and clears its id, so the next
// Save issues a brand-new id (fixation defence at login). Values are kept.
func (s *Store) Renew(ctx context.Context, sess *sessions.Session) error {
	if sess.ID != "" {
		if err := s.db.DeleteSession(ctx, hashID(sess.ID)); err != nil {
			return err
		}
	}
	sess.ID = ""
	sess.IsNew = true
	return nil
}

// Destroy deletes the session row and expires the cookie.
func (s *Store) Destroy(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	sess.Options = s.expiredOptions()
	return s.Save(r, w, sess)
}

func (s *Store) cookieOptions() *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: int(s.opts.MaxAge.Seconds()), Secure: s.opts.Secure,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (s *Store) expiredOptions() *sessions.Options {
	o := s.cookieOptions()
	o.MaxAge = -1
	return o
}

func encodeValues(v map[any]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return buf.Bytes(), nil
}

func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}
