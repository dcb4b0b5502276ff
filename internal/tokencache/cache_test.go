package tokencache

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
	"time"

	"teslalink/internal/db"
)

// idOf is a distinct link id per name.
func idOf(name string) [16]byte {
	var id [16]byte
	h := sha256.Sum256([]byte(name))
	copy(id[:], h[:])
	return id
}

func entry(name string) Entry {
	return Entry{AccessTokenSealed: []byte("sealed-" + name), AccessTokenExpiresAt: time.Now().Add(time.Hour),
		GrantedScopes: []string{"openid"}, Region: "na", TokenKeyID: "k1"}
}

func put(c *Cache, name string) {
	c.PutLink(c.Gen(), idOf(name), db.StatusActive, entry(name))
}

func TestOffUntilListening(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	var k [32]byte
	c.PutClient(c.Gen(), k, Client{ID: 1})
	put(c, "a")
	if _, ok := c.Link(idOf("a")); ok {
		t.Fatal("cache served entries before its listener was up")
	}
	if _, ok := c.Client(k); ok {
		t.Fatal("cache served a client before its listener was up")
	}
	c.enable()
	put(c, "a")
	c.PutClient(c.Gen(), k, Client{ID: 1})
	l, ok := c.Link(idOf("a"))
	if !ok || string(l.AccessTokenSealed) != "sealed-a" || l.Region != "na" || l.TokenKeyID != "k1" {
		t.Fatalf("hit = %v, entry %+v", ok, l)
	}
	if cl, ok := c.Client(k); !ok || cl.ID != 1 {
		t.Fatalf("client: %v %+v", ok, cl)
	}
	c.disable()
	if _, ok := c.Link(idOf("a")); ok || c.Len() != 0 {
		t.Fatal("entries survived the listener going down")
	}
}

func TestRacingReadIsNotCached(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	c.enable()
	gen := c.Gen()                                         // a request starts reading the database...
	c.apply("link:" + db.FormatLinkID(idOf("a")))          // ...a change to link a commits meanwhile...
	c.PutLink(gen, idOf("a"), db.StatusActive, entry("a")) // ...so its (maybe old) row is not kept
	c.PutClient(gen, [32]byte{}, Client{ID: 1})            // nor the key read with it
	if _, ok := c.Link(idOf("a")); ok {
		t.Fatal("a row read before a change was cached")
	}
	if _, ok := c.Client([32]byte{}); ok {
		t.Fatal("a key read before a change was cached")
	}
}

func TestChangeNotificationsEvict(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	c.enable()
	var k [32]byte
	k[0] = 0xab
	c.PutClient(c.Gen(), k, Client{ID: 1})
	put(c, "a")
	c.apply("link:" + db.FormatLinkID(idOf("a")))
	if _, ok := c.Link(idOf("a")); ok {
		t.Fatal("link change did not evict")
	}
	c.apply("client:ab00000000000000000000000000000000000000000000000000000000000000")
	if _, ok := c.Client(k); ok {
		t.Fatal("client change did not evict")
	}
	c.PutLink(c.Gen(), idOf("r"), db.StatusRevoked, entry("r"))
	if _, ok := c.Link(idOf("r")); ok {
		t.Fatal("a revoked link was cached")
	}
	put(c, "b")
	c.apply("resync")
	if _, ok := c.Link(idOf("b")); ok {
		t.Fatal("an unknown notification did not empty the cache")
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	c := New(time.Second, 1<<20, nil)
	now := time.Now()
	c.now = func() time.Time { return now }
	c.enable()
	put(c, "a")
	c.PutClient(c.Gen(), [32]byte{}, Client{ID: 1})
	now = now.Add(2 * time.Second)
	if _, ok := c.Link(idOf("a")); ok {
		t.Fatal("expired link entry served")
	}
	if _, ok := c.Client([32]byte{}); ok {
		t.Fatal("expired client served")
	}
}

// TestBudgetDropsOldest: past the budget, the oldest entries go (a
// segment at a time), the newest stay, and the accounting never exceeds
// the budget.
func TestBudgetDropsOldest(t *testing.T) {
	t.Parallel()
	const budget = 256 << 10
	c := New(time.Minute, budget, nil)
	c.enable()
	const n = 20000 // far more than fit
	for i := range n {
		put(c, fmt.Sprintf("l%07d", i))
		if u := c.Used(); u > budget {
			t.Fatalf("over budget after %d entries: %d bytes", i+1, u)
		}
	}
	if c.Len() < budget/(EntryOverhead+32)/2 {
		t.Fatalf("only %d entries kept in %d bytes", c.Len(), budget)
	}
	for i := n - 100; i < n; i++ {
		name := fmt.Sprintf("l%07d", i)
		if e, ok := c.Link(idOf(name)); !ok || string(e.AccessTokenSealed) != "sealed-"+name {
			t.Fatalf("a recent entry is missing: %s", name)
		}
	}
	if _, ok := c.Link(idOf("l0000000")); ok {
		t.Fatal("the oldest entry survived")
	}
	// Re-adding an entry keeps one copy: the newest.
	put(c, "l0000001")
	e := entry("l0000001")
	e.AccessTokenSealed = []byte("newer")
	c.PutLink(c.Gen(), idOf("l0000001"), db.StatusActive, e)
	if got, _ := c.Link(idOf("l0000001")); string(got.AccessTokenSealed) != "newer" {
		t.Fatalf("stale copy served: %q", got.AccessTokenSealed)
	}
}

// TestMemoryPerEntry checks TOKEN_CACHE_MB's accounting against what the
// Go heap really spends on a full cache: within 25%, for tokens of
// Tesla's size (about 1.2 KB sealed) and of the benchmark's (about 100 B).
func TestMemoryPerEntry(t *testing.T) {
	for _, size := range []int{100, 1200} {
		const budget = 32 << 20
		token := make([]byte, size)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := New(time.Minute, budget, nil)
		c.enable()
		exp := time.Now().Add(time.Hour)
		for i := 0; c.Len() < (budget/(size+EntryOverhead))*3/4 || i < 1000; i++ {
			var id [16]byte
			id[0], id[1], id[2], id[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			c.PutLink(c.Gen(), id, db.StatusActive, Entry{AccessTokenSealed: token, AccessTokenExpiresAt: exp, Region: "na"})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		real := float64(after.HeapAlloc - before.HeapAlloc)
		accounted := float64(c.Used())
		t.Logf("%d-byte tokens: %d entries, accounted %.1f MB, heap %.1f MB (%.0f B/entry real, %.0f accounted)",
			size, c.Len(), accounted/(1<<20), real/(1<<20), real/float64(c.Len()), accounted/float64(c.Len()))
		if real > accounted*1.25 || real < accounted*0.75 {
			t.Errorf("%d-byte tokens: the heap holds %.0f bytes, the accounting says %.0f", size, real, accounted)
		}
		runtime.KeepAlive(c)
	}
}
