package teslasim

import (
	"sync"
	"time"
)

// Clock is the simulator's notion of time. Tests advance it to make hours or
// months pass without sleeping. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	running bool          // Now is the real time plus offset
	offset  time.Duration // of a running clock
}

// NewRunningClock returns a clock that follows the real time, plus whatever
// Advance adds: for a simulator that runs for hours (web dev, web tesla-sim),
// whose tokens must expire as real time passes.
func NewRunningClock() *Clock {
	return &Clock{running: true}
}

// NewClock returns a clock that reads t until advanced.
func NewClock(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.now
}

// Advance moves the clock forward by d (backwards if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	c.now = c.now.Add(d)
}

// Offset is how far a running clock was advanced (zero for a fixed clock).
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return 0
	}
	return c.offset
}
