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

// PreciseClock is the real clock. SleepUntil sleeps with a Go timer until
// shortly before t, then (on Linux) with the kernel's high-resolution timer
// until SpinWindow before t, then spins: each send leaves within
// microseconds of its due time, and between sends the process sleeps,
// leaving the CPU to the target on a small machine.
type PreciseClock struct {
	// SpinWindow is the busy-wait span before each due time; a negative
	// value disables spinning. 0 means DefaultSpinWindow, widened for long
	// waits to 2% of the wait (at most maxSpinWindow): a wait of 50 ms (20
	// events/s) spins its last millisecond, which covers any lateness of
	// the sleep before it for 2% of a core.
	SpinWindow time.Duration
}

// maxSpinWindow caps the widened default spin window.
const maxSpinWindow = time.Millisecond

// Now returns the wall clock time (with its monotonic reading).
func (PreciseClock) Now() time.Time { return time.Now() }

// spinWindow resolves the SpinWindow setting.
func (c PreciseClock) spinWindow() time.Duration {
	switch {
	case c.SpinWindow == 0:
		return DefaultSpinWindow
	case c.SpinWindow < 0:
		return 0
	}
	return c.SpinWindow
}

// SleepUntil sleeps until t: a Go timer for the bulk, a fine sleep for the
// last stretch, then a spin.
func (c PreciseClock) SleepUntil(ctx context.Context, t time.Time) error {
	spin := c.spinWindow()
	if c.SpinWindow == 0 {
		spin = max(spin, min(time.Until(t)/50, maxSpinWindow))
	}
	spinFrom := t.Add(-spin)
	if d := time.Until(spinFrom) - fineSlack; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	fineSleep(spinFrom)
	spinUntil(ctx, t)
	return ctx.Err()
}

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
