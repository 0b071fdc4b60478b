package pace

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Alarm is a precise sleep that other goroutines can cut short. A reply
// dispatcher sleeps on one until its earliest due time, and a stream that
// schedules an earlier reply wakes it with Wake instead of every new reply
// waking it. One goroutine waits on an Alarm at a time; any may Wake it.
//
// On a PreciseClock the wait is a pollTimer (on Linux a timerfd read
// through Go's network poller, see pollTimer), without the clock's spin:
// an Alarm times the replies of simulated agents, whose own timing is
// coarser than the tens of microseconds the poller's wake-up adds, and a
// spin long enough to cover that wake-up cost more CPU than anything
// else on a reply's path. Other clocks jump: WaitUntil looks for a Wake
// once, then sleeps on the clock.
type Alarm struct {
	clock Clock
	woken atomic.Bool
	timer *pollTimer // nil unless the clock is a PreciseClock
}

// NewAlarm returns an Alarm on c; Close releases what it holds.
func NewAlarm(c Clock) (*Alarm, error) {
	a := &Alarm{clock: c}
	if _, precise := c.(PreciseClock); precise {
		t, err := newPollTimer()
		if err != nil {
			return nil, fmt.Errorf("pace: alarm: %w", err)
		}
		a.timer = t
	}
	return a, nil
}

// Wake ends the WaitUntil in progress early, or the next one at once if
// none is. Waking a closed Alarm does nothing.
func (a *Alarm) Wake() {
	if a.woken.Swap(true) {
		return // a wake-up is pending already
	}
	if a.timer != nil {
		a.timer.fire()
	}
}

// WaitUntil waits until the clock reaches t, and returns woken true when
// Wake ended the wait first, or ctx's error when ctx ended first.
func (a *Alarm) WaitUntil(ctx context.Context, t time.Time) (woken bool, err error) {
	if a.timer == nil {
		if a.woken.Swap(false) {
			return true, nil
		}
		return false, a.clock.SleepUntil(ctx, t)
	}
	if a.timer.sleepUntil(ctx, t, &a.woken) {
		a.woken.Store(false)
		return true, nil
	}
	return false, ctx.Err()
}

// Close releases the Alarm's timer.
func (a *Alarm) Close() error {
	if a.timer == nil {
		return nil
	}
	return a.timer.close()
}

// pollTimers keeps the timers of PreciseClock.SleepUntil's short waits
// for reuse: each wait takes one, so the clock's copies (the pacer's and
// the connect phase's) can sleep at once. A timer the pool drops is closed
// by its file's finalizer.
var pollTimers sync.Pool

// pollSleepUntil sleeps on a pooled pollTimer until t or until ctx ends.
// Without a timer (the process is out of file descriptors) it sleeps like
// kernelSleepUntil.
func pollSleepUntil(ctx context.Context, t time.Time) {
	pt, _ := pollTimers.Get().(*pollTimer)
	if pt == nil {
		var err error
		if pt, err = newPollTimer(); err != nil {
			kernelSleepUntil(ctx, t, nil)
			return
		}
	}
	pt.sleepUntil(ctx, t, nil)
	pollTimers.Put(pt)
}

// sleepUntil waits on the timer until t, in steps of at most sleepChunk so
// that ctx is seen, and returns early with woken true when woken (nil:
// never) is set. It loops over early returns: a fire left over from a
// Wake that the last wait already answered.
func (pt *pollTimer) sleepUntil(ctx context.Context, t time.Time, woken *atomic.Bool) (wasWoken bool) {
	for ctx.Err() == nil {
		d := time.Until(t)
		if d <= 0 {
			return false
		}
		pt.arm(min(d, sleepChunk))
		// A Wake between the last look and the arming above fired a
		// timer that arm has just re-armed: look again before waiting.
		if woken != nil && woken.Load() {
			return true
		}
		pt.wait()
		if woken != nil && woken.Load() {
			return true
		}
	}
	return false
}
