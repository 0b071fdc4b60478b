package replay

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Clock is the time source of a replay. Every due time is computed from one
// start instant and waited for with SleepUntil, so a fake clock makes the
// whole schedule testable without sleeping.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when the clock reaches t (at once if t has passed)
	// or with ctx.Err() when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// Compile-time checks.
var (
	_ Clock = PreciseClock{}
	_ Clock = (*FakeClock)(nil)
)

// DefaultSpinWindow is how long before a due time PreciseClock stops
// sleeping and starts spinning. A timer on Linux oversleeps by up to about
// 1 ms for short sleeps (and 0.1-0.3 ms for longer ones), so the window must
// cover that slack for sends to leave within microseconds of their due time.
const DefaultSpinWindow = 1500 * time.Microsecond

// PreciseClock is the real clock. SleepUntil sleeps with a timer until
// SpinWindow before t, then spins, yielding the processor between checks
// so other goroutines keep running on a small machine.
type PreciseClock struct {
	// SpinWindow is the busy-wait span before each due time;
	// 0 means DefaultSpinWindow, a negative value disables spinning.
	SpinWindow time.Duration
}

// Now returns the wall clock time (with its monotonic reading).
func (PreciseClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t: a timer for the bulk, then a spin.
func (c PreciseClock) SleepUntil(ctx context.Context, t time.Time) error {
	spin := c.SpinWindow
	if spin == 0 {
		spin = DefaultSpinWindow
	}
	if spin < 0 {
		spin = 0
	}
	if d := time.Until(t) - spin; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	spinUntil(ctx, t)
	return ctx.Err()
}

// pureSpin is the last stretch before a due time spent in a tight loop:
// runtime.Gosched puts the goroutine behind every runnable one, which on a
// busy 2-core machine can cost more than the whole window.
const pureSpin = 150 * time.Microsecond

// spinUntil busy-waits until t, yielding the processor while more than
// pureSpin remains.
func spinUntil(ctx context.Context, t time.Time) {
	for i := 0; ; i++ {
		left := time.Until(t)
		if left <= 0 {
			return
		}
		if i&255 == 0 && ctx.Err() != nil {
			return
		}
		if left > pureSpin {
			runtime.Gosched()
		}
	}
}

// FakeClock is a Clock for tests. Its time only moves when SleepUntil is
// called with a later instant (it jumps there at once) or by Advance, so a
// schedule can be checked exactly and instantly.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a fake clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SleepUntil moves the fake time forward to t if t is later.
func (c *FakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
