package tokencache

import (
	"fmt"
	"testing"
	"time"

	"teslalink/internal/db"
)

func uuidOf(id string) string {
	return "00000000-0000-4000-8000-" + fmt.Sprintf("%012x", []byte(id))[:12]
}

func activeLink(id string) *db.Link {
	return &db.Link{ID: uuidOf(id), Status: db.StatusActive, AccessTokenSealed: []byte("sealed-" + id),
		AccessTokenExpiresAt: time.Now().Add(time.Hour), GrantedScopes: []string{"openid"}, RefreshTokenSealed: []byte("r")}
}

func TestOffUntilListening(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	var k [32]byte
	c.Put(c.Gen(), k, Client{ID: 1}, activeLink("a"))
	if _, _, ok := c.Get(k, uuidOf("a")); ok {
		t.Fatal("cache served entries before its listener was up")
	}
	c.enable()
	c.Put(c.Gen(), k, Client{ID: 1}, activeLink("a"))
	_, l, ok := c.Get(k, uuidOf("a"))
	if !ok || string(l.AccessTokenSealed) != "sealed-a" {
		t.Fatalf("hit = %v, entry %+v", ok, l)
	}
	c.disable()
	if _, _, ok := c.Get(k, uuidOf("a")); ok || c.Len() != 0 {
		t.Fatal("entries survived the listener going down")
	}
}

func TestRacingReadIsNotCached(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	c.enable()
	var k [32]byte
	gen := c.Gen()                                // a request starts reading the database...
	c.apply("link:" + uuidOf("a"))                // ...a change to link a commits meanwhile...
	c.Put(gen, k, Client{ID: 1}, activeLink("a")) // ...so its (maybe old) row is not kept
	if _, _, ok := c.Get(k, uuidOf("a")); ok {
		t.Fatal("a row read before a change was cached")
	}
}

func TestChangeNotificationsEvict(t *testing.T) {
	t.Parallel()
	c := New(time.Minute, 1<<20, nil)
	c.enable()
	var k [32]byte
	k[0] = 0xab
	c.Put(c.Gen(), k, Client{ID: 1}, activeLink("a"))
	c.apply("link:" + uuidOf("a"))
	if _, _, ok := c.Get(k, uuidOf("a")); ok {
		t.Fatal("link change did not evict")
	}
	c.Put(c.Gen(), k, Client{ID: 1}, activeLink("a"))
	c.apply("client:ab00000000000000000000000000000000000000000000000000000000000000")
	if _, _, ok := c.Get(k, ""); ok {
		t.Fatal("client change did not evict")
	}
	c.Put(c.Gen(), k, Client{ID: 1}, &db.Link{ID: uuidOf("r"), Status: db.StatusRevoked})
	if _, _, ok := c.Get(k, uuidOf("r")); ok {
		t.Fatal("a revoked link was cached")
	}
}

func TestTTLAndBudget(t *testing.T) {
	t.Parallel()
	c := New(time.Second, 40, nil)
	now := time.Now()
	c.now = func() time.Time { return now }
	c.enable()
	var k [32]byte
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		c.Put(c.Gen(), k, Client{ID: 1}, activeLink(id))
		if c.used > 40 {
			t.Fatalf("over budget: %d", c.used)
		}
	}
	if c.Len() == 0 || c.Len() == 12 {
		t.Fatalf("budget not kept: %d links", c.Len())
	}
	_, l, ok := c.Get(k, uuidOf("l"))
	if !ok || string(l.AccessTokenSealed) != "sealed-l" {
		t.Fatalf("latest entry: %v %+v", ok, l)
	}
	now = now.Add(2 * time.Second)
	if _, _, ok := c.Get(k, ""); ok {
		t.Fatal("expired entry served")
	}
}
