package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestBucketBurstThenRate(t *testing.T) {
	c := newClock()
	b := NewBucket(2, 3, c.now) // 2/s, bursts of 3
	for i := range 3 {
		if ok, _ := b.Allow(); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := b.Allow()
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("4th: ok=%v wait=%v, want refused with wait ≤ 500ms", ok, wait)
	}
	c.add(500 * time.Millisecond)
	if ok, _ := b.Allow(); !ok {
		t.Fatal("refused after one token refilled")
	}
	if ok, _ := b.Allow(); ok {
		t.Fatal("allowed with an empty bucket")
	}
	c.add(time.Hour)
	for i := range 3 {
		if ok, _ := b.Allow(); !ok {
			t.Fatalf("after an hour: request %d refused (bucket must refill only to its burst)", i+1)
		}
	}
	if ok, _ := b.Allow(); ok {
		t.Fatal("bucket refilled beyond its burst")
	}
}

func TestNilMeansNoLimit(t *testing.T) {
	if b := NewBucket(0, 10, nil); b != nil {
		t.Fatal("rate 0 must give no limit (nil)")
	}
	var b *Bucket
	var k *Keyed
	for range 1000 {
		if ok, _ := b.Allow(); !ok {
			t.Fatal("nil bucket refused")
		}
		if ok, _ := k.Allow("x"); !ok {
			t.Fatal("nil keyed refused")
		}
	}
}

func TestKeyedIsPerKey(t *testing.T) {
	c := newClock()
	k := NewKeyed(1, 2, c.now)
	for range 2 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatal("a refused within its burst")
		}
	}
	if ok, wait := k.Allow("a"); ok || wait != time.Second {
		t.Fatalf("a: ok=%v wait=%v, want refused, 1s", ok, wait)
	}
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal("b refused because a used its budget")
	}
}

func TestKeyedMemoryIsBounded(t *testing.T) {
	c := newClock()
	k := NewKeyed(1, 5, c.now)
	k.maxKeys = 100
	// An abuser spends its budget on one key while many others come and go.
	for range 5 {
		k.Allow("abuser")
	}
	for i := range 1000 {
		c.add(time.Millisecond)
		k.Allow(fmt.Sprintf("k%d", i))
		if k.Len() > 100 {
			t.Fatalf("%d keys remembered, want ≤ 100", k.Len())
		}
	}
	// Keys whose buckets refilled are forgotten first.
	c.add(10 * time.Second)
	for i := range 100 {
		k.Allow(fmt.Sprintf("new%d", i))
	}
	if n := k.Len(); n > 100 || n < 50 {
		t.Fatalf("%d keys remembered, want 50-100", n)
	}
}
