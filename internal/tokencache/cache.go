// Package tokencache keeps what the token endpoint needs (API clients by key
// hash, links with their sealed access tokens) in memory, so handing out a
// still-valid token costs no database round trip.
//
// It is only used while this instance listens to PostgreSQL's change
// notifications (triggers announce every update of a link or API client at
// commit, on every instance): a refresh, revoke or key revocation anywhere
// evicts the entry everywhere within milliseconds. While the listener is
// down the cache is empty and bypassed. A generation counter stops a read
// that raced a change from caching the old row, and a TTL bounds any entry's
// life regardless.
package tokencache

import (
	"context"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"teslalink/internal/db"
)

// Client is the cached part of an API client.
type Client struct {
	ID     int64
	Name   string
	Scopes []string
}

type clientEntry struct {
	c       Client
	expires time.Time
}

// linkEntry holds only what the token endpoint reads, never the refresh
// token or the owner's profile. It holds no pointers (the sealed access
// token lives in a chunk, names are indexes into small tables), so the
// garbage collector never scans the cache however large it grows.
type linkEntry struct {
	chunk   uint32 // the sealed access token: chunks[chunk][off:off+n]
	off, n  uint32
	exp     int64  // access token expiry, Unix nanoseconds
	expires int64  // cache entry expiry, Unix nanoseconds
	region  uint16 // index into names
	scopes  uint16 // index into scopeSets
	keyID   uint16 // index into names
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl      time.Duration
	maxBytes int
	now      func() time.Time
	log      *slog.Logger

	mu        sync.RWMutex
	live      bool
	gen       uint64
	clients   map[[32]byte]clientEntry
	links     map[[16]byte]linkEntry
	chunks    [][]byte // sealed access tokens, append-only until reset
	used      int      // bytes in chunks
	names     []string
	nameIdx   map[string]uint16
	scopeSets [][]string
	scopeIdx  map[string]uint16

	hits, misses atomic.Uint64 // Get's answers, for metrics
}

// New returns a cache that is off until Run connects its listener.
func New(ttl time.Duration, maxBytes int, logger *slog.Logger) *Cache {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if maxBytes <= 0 {
		maxBytes = 32 << 20
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{ttl: ttl, maxBytes: maxBytes, now: time.Now, log: logger, clients: map[[32]byte]clientEntry{}}
	c.resetLocked()
	return c
}

// Run keeps the change listener connected until ctx ends, reconnecting
// with backoff; the cache is only live while it is connected.
func (c *Cache) Run(ctx context.Context, store *db.Store) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := store.ListenChanges(ctx, c.enable, c.apply)
		c.disable()
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("token cache off: change listener lost; reconnecting", "error", err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Cache) enable() {
	c.mu.Lock()
	c.resetLocked()
	c.live = true
	c.mu.Unlock()
	c.log.Info("token cache on")
}

func (c *Cache) disable() {
	c.mu.Lock()
	c.resetLocked()
	c.live = false
	c.mu.Unlock()
}

// resetLocked empties the cache. Old chunks are left to readers still
// holding slices of them and never written again.
func (c *Cache) resetLocked() {
	c.gen++
	clear(c.clients)
	c.links = map[[16]byte]linkEntry{}
	c.chunks, c.used = nil, 0
	c.names, c.nameIdx = nil, map[string]uint16{}
	c.scopeSets, c.scopeIdx = nil, map[string]uint16{}
}

// apply handles one change notification.
func (c *Cache) apply(payload string) {
	kind, id, _ := strings.Cut(payload, ":")
	switch kind {
	case "link":
		c.InvalidateLink(id)
	case "client":
		var h [32]byte
		if b, err := hex.DecodeString(id); err == nil && len(b) == len(h) {
			copy(h[:], b)
			c.mu.Lock()
			c.gen++
			delete(c.clients, h)
			c.mu.Unlock()
		}
	default:
		c.mu.Lock()
		c.resetLocked()
		c.mu.Unlock()
	}
}

// InvalidateLink drops a link (this instance changed it; the notification
// will follow for the others).
func (c *Cache) InvalidateLink(id string) {
	k, ok := db.ParseLinkID(id)
	c.mu.Lock()
	c.gen++
	if ok {
		delete(c.links, k) // its chunk bytes stay until the next reset
	}
	c.mu.Unlock()
}

// Gen is taken before reading from the database; Put only stores when no
// change was seen since.
func (c *Cache) Gen() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// Entry is what the cache holds of an active link: enough to hand out its
// access token while it is valid, never the refresh token or the owner.
type Entry struct {
	Region               string
	GrantedScopes        []string // shared: read only
	AccessTokenSealed    []byte   // shared: read only
	AccessTokenExpiresAt time.Time
	TokenKeyID           string
}

// Get returns the cached client for keyHash and, when linkID is not "", the
// cached link entry; ok is false on any miss.
func (c *Cache) Get(keyHash [32]byte, linkID string) (Client, Entry, bool) {
	cl, e, ok := c.get(keyHash, linkID)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return cl, e, ok
}

// Stats returns how many Get calls were answered from the cache and how
// many were not (missing, expired, or the cache was not live).
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

func (c *Cache) get(keyHash [32]byte, linkID string) (Client, Entry, bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.live {
		return Client{}, Entry{}, false
	}
	ce, ok := c.clients[keyHash]
	if !ok || now.After(ce.expires) {
		return Client{}, Entry{}, false
	}
	if linkID == "" {
		return ce.c, Entry{}, true
	}
	k, ok := db.ParseLinkID(linkID)
	if !ok {
		return Client{}, Entry{}, false
	}
	le, ok := c.links[k]
	if !ok || now.UnixNano() > le.expires {
		return Client{}, Entry{}, false
	}
	return ce.c, Entry{Region: c.names[le.region], GrantedScopes: c.scopeSets[le.scopes],
		AccessTokenSealed: c.chunks[le.chunk][le.off : le.off+le.n : le.off+le.n], AccessTokenExpiresAt: time.Unix(0, le.exp),
		TokenKeyID: c.names[le.keyID]}, true
}

// Put stores a client and (when not nil) an active link read at generation gen.
func (c *Cache) Put(gen uint64, keyHash [32]byte, client Client, l *db.Link) {
	now := c.now()
	expires := now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	c.clients[keyHash] = clientEntry{c: client, expires: expires}
	if l == nil || l.Status != db.StatusActive || l.AccessTokenSealed == nil {
		return
	}
	k, ok := db.ParseLinkID(l.ID)
	if !ok || len(c.names) > 60000 || len(c.scopeSets) > 60000 {
		return
	}
	n := len(l.AccessTokenSealed)
	if n > chunkSize {
		return
	}
	if c.used+n > c.maxBytes {
		// Full: start again (the entries dropped refill on their next miss).
		gen := c.gen
		c.resetLocked()
		c.gen = gen
	}
	last := len(c.chunks) - 1
	if last < 0 || len(c.chunks[last])+n > cap(c.chunks[last]) {
		c.chunks = append(c.chunks, make([]byte, 0, chunkSize))
		last++
	}
	off := len(c.chunks[last])
	c.chunks[last] = append(c.chunks[last], l.AccessTokenSealed...)
	c.used += n
	c.links[k] = linkEntry{chunk: uint32(last), off: uint32(off), n: uint32(n), exp: l.AccessTokenExpiresAt.UnixNano(),
		expires: expires.UnixNano(), region: c.name(l.Region), scopes: c.scopeSet(l.GrantedScopes), keyID: c.name(l.TokenKeyID)}
}

// chunkSize is the unit the sealed tokens are stored in: memory grows with use.
const chunkSize = 1 << 20

func (c *Cache) name(v string) uint16 {
	if i, ok := c.nameIdx[v]; ok {
		return i
	}
	c.names = append(c.names, v)
	c.nameIdx[v] = uint16(len(c.names) - 1)
	return uint16(len(c.names) - 1)
}

func (c *Cache) scopeSet(scopes []string) uint16 {
	k := strings.Join(scopes, " ")
	if i, ok := c.scopeIdx[k]; ok {
		return i
	}
	c.scopeSets = append(c.scopeSets, slices.Clone(scopes))
	c.scopeIdx[k] = uint16(len(c.scopeSets) - 1)
	return uint16(len(c.scopeSets) - 1)
}

// Live reports whether the cache is in use (its listener is connected).
func (c *Cache) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live
}

// Len returns the number of cached links (for tests and metrics).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.links)
}
