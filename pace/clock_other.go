//go:build !linux

package pace

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultSpinWindow is how long before a due time PreciseClock stops
// sleeping and starts spinning. Without a fine sleep the window must cover
// the Go timer's slack: it oversleeps by up to about 1 ms for short sleeps
// (and 0.1-0.3 ms for longer ones).
const DefaultSpinWindow = 1500 * time.Microsecond

// kernelSleeps is false: PreciseClock sleeps with a Go timer.
const kernelSleeps = false

// fineSleep has nothing finer than the Go timer to offer here.
func fineSleep(time.Time, *Bell) bool { return false }

// pureSpin is the last stretch before a due time spent in a tight loop;
// before it the 1.5 ms spin yields (runtime.Gosched) so other goroutines
// keep running on a small machine. Gosched puts the goroutine behind every
// runnable one, which on a busy 2-core machine can cost more than the
// whole window, hence the tight loop at the end.
const pureSpin = 150 * time.Microsecond

// dedicateAbove is never reached here: kernelSleeps is false.
const dedicateAbove = time.Duration(1<<63 - 1)

// sleepDedicated sleeps on a Go timer here until spinFrom, or until b (nil:
// none) rings, and reports whether it rang; SleepUntil never calls it (see
// dedicateAbove), only Await.
func sleepDedicated(ctx context.Context, spinFrom time.Time, _ *lastYield, b *Bell) bool {
	if b.take() {
		return true
	}
	var rung chan struct{} // nil without a bell: never ready
	if b != nil {
		rung = b.ch()
	}
	t := time.NewTimer(time.Until(spinFrom))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-rung:
		return true
	}
	return false
}

// Bell ends a PreciseClock.Await early: a goroutine that has just made
// something due sooner than the waiter sleeps for rings it, and the waiter
// looks again. A ring while nobody waits is kept for the next Await, which
// then returns at once; rings before it is taken count as one. The zero
// Bell is ready to use.
type Bell struct {
	once  sync.Once
	rings chan struct{}
}

func (b *Bell) ch() chan struct{} {
	b.once.Do(func() { b.rings = make(chan struct{}, 1) })
	return b.rings
}

// Ring wakes the goroutine in Await on b, or the next one to call it.
func (b *Bell) Ring() {
	select {
	case b.ch() <- struct{}{}:
	default:
	}
}

// take reports whether b (nil: no bell) has rung since the last take.
func (b *Bell) take() bool {
	if b == nil {
		return false
	}
	select {
	case <-b.ch():
		return true
	default:
		return false
	}
}

// Thread does nothing here: there is no fine sleep to give a thread.
type Thread struct{}

// Fit does nothing.
func (*Thread) Fit(time.Duration) {}

// Release does nothing.
func (*Thread) Release() {}

// Held is false: no goroutine is put on a thread of its own here.
func (*Thread) Held() bool { return false }

// CheckRealtime reports that this system has no real-time pacer thread.
func CheckRealtime() error { return errors.New("real-time priority is only used on Linux") }
