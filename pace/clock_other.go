//go:build !linux

package pace

import (
	"context"
	"errors"
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
func fineSleep(time.Time) {}

// pureSpin is the last stretch before a due time spent in a tight loop;
// before it the 1.5 ms spin yields (runtime.Gosched) so other goroutines
// keep running on a small machine. Gosched puts the goroutine behind every
// runnable one, which on a busy 2-core machine can cost more than the
// whole window, hence the tight loop at the end.
const pureSpin = 150 * time.Microsecond

// dedicateAbove is never reached here: kernelSleeps is false.
const dedicateAbove = time.Duration(1<<63 - 1)

// sleepDedicated is never called here (see dedicateAbove).
func sleepDedicated(context.Context, time.Time, *lastYield) {}

// Thread does nothing here: there is no fine sleep to give a thread.
type Thread struct{}

// Fit does nothing.
func (*Thread) Fit(time.Duration) {}

// Release does nothing.
func (*Thread) Release() {}

// CheckRealtime reports that this system has no real-time pacer thread.
func CheckRealtime() error { return errors.New("real-time priority is only used on Linux") }
