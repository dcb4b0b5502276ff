// Package ratelimit holds token buckets: one shared Bucket (the budget for
// calls to Tesla's token endpoint) and Keyed buckets, one per client address
// or API client. Counters live in this process's memory only.
package ratelimit

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Bucket is a token bucket: up to Burst requests at once, refilled at Rate
// per second. A nil *Bucket allows everything.
type Bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	at     time.Time
	now    func() time.Time

	allowed, refused uint64 // Allow's answers so far, for metrics
}

// BucketStats is a Bucket's configuration and use so far.
type BucketStats struct {
	Rate, Burst      float64 // per second; at once
	Available        float64 // tokens left now
	Allowed, Refused uint64  // Allow's answers so far
}

// Stats returns the bucket's configuration and use so far (zero for nil).
func (b *Bucket) Stats() BucketStats {
	if b == nil {
		return BucketStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	avail := b.tokens
	if d := b.now().Sub(b.at); d > 0 {
		avail = math.Min(b.burst, avail+d.Seconds()*b.rate)
	}
	return BucketStats{Rate: b.rate, Burst: b.burst, Available: avail, Allowed: b.allowed, Refused: b.refused}
}

// NewBucket returns a bucket allowing rate requests per second with bursts of
// burst (at least 1). A rate of zero or less returns nil: no limit.
func NewBucket(rate float64, burst int, now func() time.Time) *Bucket {
	if rate <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	b := float64(max(burst, 1))
	return &Bucket{rate: rate, burst: b, tokens: b, at: now(), now: now}
}

// Allow takes one token. When none is left it returns false and how long
// until one is.
func (b *Bucket) Allow() (bool, time.Duration) {
	if b == nil {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ok, wait := take(&b.tokens, &b.at, b.rate, b.burst, b.now())
	if ok {
		b.allowed++
	} else {
		b.refused++
	}
	return ok, wait
}

// take refills tokens for the time since at and spends one if it can.
func take(tokens *float64, at *time.Time, rate, burst float64, now time.Time) (bool, time.Duration) {
	if d := now.Sub(*at); d > 0 {
		*tokens = math.Min(burst, *tokens+d.Seconds()*rate)
		*at = now
	}
	if *tokens >= 1 {
		*tokens--
		return true, 0
	}
	wait := time.Duration((1 - *tokens) / rate * float64(time.Second))
	return false, wait
}

// Keyed is one token bucket per key (a client address, an API client). It
// keeps at most MaxKeys buckets: full buckets are forgotten first (they hold
// no information), and if every bucket is in use the oldest half go.
// A nil *Keyed allows everything.
type Keyed struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time
	buckets map[string]*keyBucket
}

type keyBucket struct {
	tokens float64
	at     time.Time
}

// DefaultMaxKeys bounds a Keyed's memory (about 100 bytes a key).
const DefaultMaxKeys = 100_000

// NewKeyed returns per-key buckets allowing rate requests per second with
// bursts of burst (at least 1). A rate of zero or less returns nil: no limit.
func NewKeyed(rate float64, burst int, now func() time.Time) *Keyed {
	if rate <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Keyed{rate: rate, burst: float64(max(burst, 1)), maxKeys: DefaultMaxKeys, now: now,
		buckets: make(map[string]*keyBucket)}
}

// Allow takes one token from key's bucket. When none is left it returns
// false and how long until one is.
func (k *Keyed) Allow(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.maxKeys {
			k.evict(now)
		}
		b = &keyBucket{tokens: k.burst, at: now}
		k.buckets[key] = b
	}
	return take(&b.tokens, &b.at, k.rate, k.burst, now)
}

// evict makes room: first buckets that have refilled completely, then, if
// that is not enough, the half least recently used. k.mu is held.
func (k *Keyed) evict(now time.Time) {
	full := time.Duration(k.burst / k.rate * float64(time.Second))
	for key, b := range k.buckets {
		if now.Sub(b.at) >= full {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) < k.maxKeys {
		return
	}
	times := make([]time.Time, 0, len(k.buckets))
	for _, b := range k.buckets {
		times = append(times, b.at)
	}
	cut := median(times)
	for key, b := range k.buckets {
		if !b.at.After(cut) {
			delete(k.buckets, key)
		}
	}
}

func median(ts []time.Time) time.Time {
	// A sort of at most maxKeys entries, only when the map is full, is fine.
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts[len(ts)/2]
}

// Len is the number of keys remembered (for tests).
func (k *Keyed) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
