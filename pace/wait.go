package pace

import (
	"context"
	"time"
)

// WaitUntil waits on c until t like c.SleepUntil, but returns early, with
// woken true, when something arrives on wake: a caller that keeps a queue
// of due times (a reply dispatcher) is woken to look at an earlier one.
// On a PreciseClock the long part of the wait is a Go timer (it can be
// interrupted), the last stretch before the spin window fine sleeps of at
// most fineStep (so a wake-up then is at most that late), and the spin
// watches wake too. Other clocks jump: WaitUntil looks at wake once, then
// sleeps on the clock.
func WaitUntil(ctx context.Context, c Clock, t time.Time, wake <-chan struct{}) (woken bool, err error) {
	pc, precise := c.(PreciseClock)
	if !precise {
		select {
		case <-wake:
			return true, nil
		default:
		}
		return false, c.SleepUntil(ctx, t)
	}
	spin := pc.spinWindow()
	for {
		wait := time.Until(t)
		switch {
		case wait > spin+fineSlack:
			timer := time.NewTimer(wait - spin - fineSlack)
			select {
			case <-wake:
				timer.Stop()
				return true, nil
			case <-ctx.Done():
				timer.Stop()
				return false, ctx.Err()
			case <-timer.C:
			}
		case wait > spin:
			spinFrom := t.Add(-spin)
			fineSleepAtMost(spinFrom, fineStep)
			pc.woke(spinFrom)
			select {
			case <-wake:
				return true, nil
			default:
			}
		default:
			if spinUntil(ctx, t, wake) {
				return true, nil
			}
			return false, ctx.Err()
		}
	}
}

// fineStep bounds each fine sleep of WaitUntil before the spin window.
const fineStep = 200 * time.Microsecond

// Dedicated reports whether a replay's pacer goroutine should wait on a
// Thread: on the real clock, when there is a schedule to keep.
func Dedicated(c Clock, p Pacer) bool {
	_, precise := c.(PreciseClock)
	return precise && p.Paced()
}
