package replay

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSpinWindow is how long before a due time PreciseClock stops
// sleeping and starts spinning. On Linux the sleep before the window is a
// clock_nanosleep with 1 ns of timer slack, which wakes 20-150 µs late
// (measured on the 2-core reference VM), so a short spin covers it and
// costs a few percent of a core at 2,000 events/s.
const DefaultSpinWindow = 100 * time.Microsecond

// kernelSleeps says PreciseClock sleeps with fineSleep all the way.
const kernelSleeps = true

// fineSlack is how early the status dispatcher's Go timer hands over to
// fineSleep: Go timers oversleep by up to about 1 ms for short sleeps.
const fineSlack = 1500 * time.Microsecond

// fineSleep sleeps until t (at most sleepChunk away) with the kernel's
// high-resolution timer. A Go timer cannot: the runtime waits for timers
// with millisecond resolution. The thread's timer slack, 50 µs by default,
// is set to 1 ns first; the goroutine is locked to its thread so the slack
// applies to the sleep.
func fineSleep(t time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	// A relative sleep, recomputed after an interruption: an absolute one
	// would need CLOCK_MONOTONIC, which x/sys reads with a syscall rather
	// than the vDSO.
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := unix.NsecToTimespec(int64(d))
		if unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil) != unix.EINTR {
			return
		}
	}
}

// pureSpin is the part of a spin spent in a tight loop, never yielding:
// here all of it. The spin window is at most a millisecond (and 100 µs at
// high rates), and runtime.Gosched would put the goroutine behind every
// runnable one, which under load costs more than the whole window.
const pureSpin = maxSpinWindow
