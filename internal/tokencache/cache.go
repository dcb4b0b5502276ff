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
	"math"
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
	exp     int64  // access token expiry, Unix nanoseconds
	expires int64  // cache entry expiry, Unix nanoseconds
	chunk   uint32 // the sealed access token: chunks[chunk][off:off+n]
	off, n  uint32
	region  uint16 // index into names
	scopes  uint16 // index into scopeSets
	keyID   uint16 // index into names
	usedBy  uint32 // the API client whose last recorded use is usedAt (0: none)
	usedAt  uint32 // Unix seconds
}

// EntryOverhead is what one cached link costs besides its sealed access
// token: its map slot (16-byte key, 48-byte entry, the map's control bytes)
// and the map's free slots, which average about a third of its capacity.
// TestMemoryPerEntry measures it; TOKEN_CACHE_MB is accounted with it, so
// the budget is what the process really spends (docs/architecture.md,
// "Token cache").
const EntryOverhead = 112

// segments is how many parts the link entries are kept in. When the newest
// part is full, the oldest is dropped whole: a quarter of the entries, the
// least recently added, and with them their bytes. A dropped link costs one
// database round trip on its next request.
const segments = 4

// segment is one part of the cache: its entries and the chunks holding
// their sealed access tokens (append-only; a deleted entry's bytes stay
// until the segment is dropped).
type segment struct {
	links  map[[16]byte]linkEntry
	chunks [][]byte
	used   int // accounted bytes: chunk capacity plus EntryOverhead per entry
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl      time.Duration
	maxBytes int
	chunk    int // chunk size for sealed tokens
	now      func() time.Time
	log      *slog.Logger

	mu        sync.RWMutex
	live      bool
	gen       uint64
	clients   map[[32]byte]clientEntry
	segs      [segments]segment // segs[head] is the newest
	head      int
	names     []string
	nameIdx   map[string]uint16
	scopeSets [][]string
	scopeIdx  map[string]uint16

	hits, misses atomic.Uint64 // Link's answers, for metrics
}

// New returns a cache that is off until Run connects its listener. It
// keeps at most about maxBytes of link entries (see EntryOverhead).
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
	chunk := min(max(maxBytes/segments/8, 4<<10), 1<<20)
	c := &Cache{ttl: ttl, maxBytes: maxBytes, chunk: chunk, now: time.Now, log: logger, clients: map[[32]byte]clientEntry{}}
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
	for i := range c.segs {
		c.segs[i] = segment{links: map[[16]byte]linkEntry{}}
	}
	c.head = 0
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
		for i := range c.segs {
			delete(c.segs[i].links, k) // its chunk bytes stay until the segment is dropped
		}
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
	// UsedBy's last recorded use of the link was at UsedAt (the token
	// endpoint records a use once per client, link and hour).
	UsedBy int64
	UsedAt time.Time
}

// Client returns the cached API client for keyHash.
func (c *Cache) Client(keyHash [32]byte) (Client, bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	ce, ok := c.clients[keyHash]
	if !c.live || !ok || now.After(ce.expires) {
		return Client{}, false
	}
	return ce.c, true
}

// Link returns the cached entry of an active link; ok is false on a miss
// (not cached, expired, or the cache is not live).
func (c *Cache) Link(id [16]byte) (Entry, bool) {
	e, ok := c.link(id)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return e, ok
}

// Stats returns how many Link calls were answered from the cache and how
// many were not (missing, expired, or the cache was not live).
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

func (c *Cache) link(id [16]byte) (Entry, bool) {
	now := c.now().UnixNano()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.live {
		return Entry{}, false
	}
	for i := range segments {
		s := &c.segs[(c.head-i+segments)%segments]
		le, ok := s.links[id]
		if !ok {
			continue
		}
		if now > le.expires {
			return Entry{}, false
		}
		return Entry{Region: c.names[le.region], GrantedScopes: c.scopeSets[le.scopes],
			AccessTokenSealed: s.chunks[le.chunk][le.off : le.off+le.n : le.off+le.n], AccessTokenExpiresAt: time.Unix(0, le.exp),
			TokenKeyID: c.names[le.keyID], UsedBy: int64(le.usedBy), UsedAt: time.Unix(int64(le.usedAt), 0)}, true
	}
	return Entry{}, false
}

// PutClient stores an API client read at generation gen.
func (c *Cache) PutClient(gen uint64, keyHash [32]byte, client Client) {
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		c.clients[keyHash] = clientEntry{c: client, expires: expires}
	}
}

// PutLink stores an active link's entry read at generation gen (taken
// before the read: a change seen since means the row may be old). Entries
// of other links are dropped, oldest first, to stay within the budget.
func (c *Cache) PutLink(gen uint64, id [16]byte, status string, e Entry) {
	n := len(e.AccessTokenSealed)
	if status != db.StatusActive || n == 0 || n > 1<<16 {
		return
	}
	expires := c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	if len(c.names) > 60000 || len(c.scopeSets) > 60000 {
		gen := c.gen // the tables only grow: start them again
		c.resetLocked()
		c.gen = gen
	}
	for i := range c.segs {
		delete(c.segs[i].links, id)
	}
	s := &c.segs[c.head]
	last := len(s.chunks) - 1
	grow := last < 0 || len(s.chunks[last])+n > cap(s.chunks[last])
	cost := EntryOverhead
	if grow {
		cost += max(c.chunk, n)
	}
	if s.used+cost > c.maxBytes/segments && len(s.links) > 0 {
		// The newest segment is full: drop the oldest and start it afresh.
		c.head = (c.head + 1) % segments
		c.segs[c.head] = segment{links: map[[16]byte]linkEntry{}}
		s, last, grow, cost = &c.segs[c.head], -1, true, EntryOverhead+max(c.chunk, n)
	}
	if grow {
		s.chunks = append(s.chunks, make([]byte, 0, max(c.chunk, n)))
		last++
	}
	off := len(s.chunks[last])
	s.chunks[last] = append(s.chunks[last], e.AccessTokenSealed...)
	s.used += cost
	by, at := usedOf(e.UsedBy, e.UsedAt)
	s.links[id] = linkEntry{chunk: uint32(last), off: uint32(off), n: uint32(n), exp: e.AccessTokenExpiresAt.UnixNano(),
		expires: expires.UnixNano(), region: c.name(e.Region), scopes: c.scopeSet(e.GrantedScopes), keyID: c.name(e.TokenKeyID),
		usedBy: by, usedAt: at}
}

// MarkUsed notes on a cached link that clientID's use at was recorded.
func (c *Cache) MarkUsed(id [16]byte, clientID int64, at time.Time) {
	by, ts := usedOf(clientID, at)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.segs {
		if le, ok := c.segs[i].links[id]; ok {
			le.usedBy, le.usedAt = by, ts
			c.segs[i].links[id] = le
			return
		}
	}
}

// usedOf packs a recorded use; a client id beyond 32 bits is not kept
// (its uses are then recorded on every cache miss and hit, never lost).
func usedOf(clientID int64, at time.Time) (uint32, uint32) {
	if clientID <= 0 || clientID > math.MaxUint32 || at.Unix() <= 0 || at.Unix() > math.MaxUint32 {
		return 0, 0
	}
	return uint32(clientID), uint32(at.Unix())
}

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
	n := 0
	for i := range c.segs {
		n += len(c.segs[i].links)
	}
	return n
}

// Used returns the accounted bytes of the link entries.
func (c *Cache) Used() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for i := range c.segs {
		n += c.segs[i].used
	}
	return n
}
