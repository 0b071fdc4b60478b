package pace

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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

// PreciseClock is the real clock. SleepUntil sleeps until shortly before t
// and then spins: most sends leave within microseconds of their due time,
// and between sends the process sleeps, leaving the CPU to the target on a
// small machine. On Linux the whole sleep is on a kernel timer without
// slack (a timerfd, or for long waits a clock_nanosleep with 1 ns of timer
// slack); elsewhere it is a Go timer.
type PreciseClock struct {
	// SpinWindow is the busy-wait span before each due time; a negative
	// value disables spinning. 0 means DefaultSpinWindow, narrowed on a
	// clock made by NewPreciseClock to what nine in ten of its recent
	// wake-ups needed (see wakeLag), and widened for waits of widenAbove
	// or more to 2% of the wait (at most maxSpinWindow): a wait of 50 ms
	// (20 events/s) spins its last millisecond, which covers any lateness
	// of the sleep before it for 2% of a core.
	SpinWindow time.Duration

	// lag, when set, follows how late the sleeps before the spin woke;
	// shared by the copies of the clock (an Alarm on it neither spins nor
	// records its wake-ups, which come through the network poller, later
	// than the clock's own).
	lag *wakeLag

	// yielded, when set, is when a long wait last yielded its processor
	// (see sleepDedicated), shared like lag: one goroutine (the pacer)
	// makes such waits at a time.
	yielded *lastYield
}

// lastYield keeps when sleepDedicated last yielded, on the monotonic
// clock. A nil *lastYield keeps nothing, and every wait yields.
type lastYield struct {
	base time.Time
	at   atomic.Int64 // time.Since(base) at the last yield, in ns
}

func newLastYield() *lastYield { return &lastYield{base: time.Now()} }

// yieldEvery is how often sleepDedicated yields at most: well within the
// 10 ms after which the runtime's monitor preempts a goroutine that has
// not been rescheduled, with a hold of holdSpan and a spin to spare.
const yieldEvery = 5 * time.Millisecond

// due says whether yieldEvery has passed since the last yield.
func (y *lastYield) due() bool {
	return y == nil || time.Since(y.base)-time.Duration(y.at.Load()) >= yieldEvery
}

// mark records a yield now.
func (y *lastYield) mark() {
	if y != nil {
		y.at.Store(int64(time.Since(y.base)))
	}
}

// NewPreciseClock returns a PreciseClock with the given SpinWindow whose
// default window follows its wake-ups: it spins only as long as its recent
// sleeps needed, not a fixed DefaultSpinWindow before every send.
func NewPreciseClock(spinWindow time.Duration) PreciseClock {
	return PreciseClock{SpinWindow: spinWindow, lag: new(wakeLag), yielded: newLastYield()}
}

// wakeLag follows how late a clock's sleeps before the spin window have
// woken lately: the lags of the last lagSamples wake-ups, of which the
// window covers all but the latest tenth. The spin is there to cover that
// lag (the kernel's wake-up, the Go scheduler's hand-over of a
// processor), and it is paid before every send: a window that covered
// the largest lag spun the difference between the largest and the usual
// one at every send: on a virtual machine whose wake-ups are 40 to 80 µs
// late, tens of microseconds of CPU a send, at hundreds of sends per
// second. Covering nine in ten costs a few microseconds a send; the
// tenth leaves late by what its wake-up was later than that, tens of
// microseconds, which send_lateness shows.
type wakeLag struct {
	mu      sync.Mutex
	lags    [lagSamples]time.Duration // a ring of the last lags
	seen    int
	sorted  [lagSamples]time.Duration // scratch for the quantile
	covered atomic.Int64              // the lag the window covers, in ns
}

// lagSamples is how many recent wake-ups the spin window follows: a run
// of prompt ones narrows it again within a fraction of a second at
// hundreds of sends per second.
const lagSamples = 64

// minSpinWindow is the narrowest adapted spin window, and spinMargin what
// it adds to the lag covered: reading the clock and handing the send over
// take a few microseconds themselves.
const (
	minSpinWindow = 10 * time.Microsecond
	spinMargin    = 5 * time.Microsecond
)

// observe records the lag of one wake-up.
func (w *wakeLag) observe(lag time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lags[w.seen%lagSamples] = lag
	w.seen++
	n := min(w.seen, lagSamples)
	recent := w.sorted[:n]
	copy(recent, w.lags[:n])
	slices.Sort(recent)
	w.covered.Store(int64(recent[n*9/10]))
}

// window is the spin window the lags seen call for: the lag covered plus
// spinMargin, between minSpinWindow and ceiling (never longer than the
// fixed window it replaces).
func (w *wakeLag) window(ceiling time.Duration) time.Duration {
	return min(max(time.Duration(w.covered.Load())+spinMargin, minSpinWindow), ceiling)
}

// maxSpinWindow caps the widened default spin window.
const maxSpinWindow = time.Millisecond

// widenAbove is the shortest wait whose default spin window is widened to
// 2% of it: the rates of 100 sends per second and below, where the process
// is idle between sends and 2% of a core buys a spin that covers the rare
// late wake-up. At higher rates that spin is paid at every send, on a
// process that is busy with the sends themselves: at 500/s, 40 µs of a
// few hundred per send, where the adapted window alone keeps the sends'
// p99 within tens of microseconds.
const widenAbove = 10 * time.Millisecond

// Now returns the wall clock time (with its monotonic reading).
func (PreciseClock) Now() time.Time { return time.Now() }

// spinWindow resolves the SpinWindow setting.
func (c PreciseClock) spinWindow() time.Duration {
	switch {
	case c.SpinWindow == 0 && c.lag != nil:
		return c.lag.window(DefaultSpinWindow)
	case c.SpinWindow == 0:
		return DefaultSpinWindow
	case c.SpinWindow < 0:
		return 0
	}
	return c.SpinWindow
}

// spinFor is the spin window before a due time wait away: spinWindow,
// widened for a wait of widenAbove or more when the window is the default.
func (c PreciseClock) spinFor(wait time.Duration) time.Duration {
	spin := c.spinWindow()
	if c.SpinWindow == 0 && wait >= widenAbove {
		spin = max(spin, min(wait/50, maxSpinWindow))
	}
	return spin
}

// woke records how late a sleep meant to end at spinFrom ended, for the
// adapted spin window; a sleep that ended before spinFrom (a step of a
// longer wait) says nothing about the lag.
func (c PreciseClock) woke(spinFrom time.Time) {
	if lag := time.Since(spinFrom); c.lag != nil && lag >= 0 {
		c.lag.observe(lag)
	}
}

// SleepUntil sleeps until the spin window before t, then spins until t.
//
// On Linux the sleep is in the kernel, in chunks of at most sleepChunk so
// that ctx is seen. A Go timer only fires when some processor runs the
// scheduler, and the runtime waits for timers with millisecond resolution:
// short sleeps end up to a millisecond late. A short wait (below
// dedicateAbove, as between the sends of a high rate) is a pollTimer read,
// which parks the goroutine until the kernel's timer fires; idle mark
// workers of the garbage collector look at the poller between their work,
// so they give a processor up at once.
//
// A long wait (dedicateAbove, as between the sends of a low rate) is
// slept in system calls instead and ends with a yield and a last stretch
// slept holding the processor (sleepDedicated); a replay's pacer goroutine
// also takes a real-time thread of its own for such waits (Thread).
// bench/RESULTS.md has the side-by-side figures.
func (c PreciseClock) SleepUntil(ctx context.Context, t time.Time) error {
	spinFrom := c.SpinStart(t)
	sleep := time.Until(spinFrom)
	if kernelSleeps && sleep >= dedicateAbove {
		sleepDedicated(ctx, spinFrom, c.yielded, nil)
	} else if kernelSleeps {
		pollSleepUntil(ctx, spinFrom)
	} else if sleep > 0 {
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	if sleep > 0 && ctx.Err() == nil {
		c.woke(spinFrom)
	}
	spinUntil(ctx, t)
	return ctx.Err()
}

// SpinStart is when SleepUntil(t), called now, stops sleeping and starts
// spinning: t less the spin window.
func (c PreciseClock) SpinStart(t time.Time) time.Time {
	return t.Add(-c.spinFor(time.Until(t)))
}

// Await is SleepUntil for a goroutine that waits for more than one kind of
// event on a Thread, such as a replay's pacer that also fires status
// replies: it sleeps until spinFrom and spins from there until t, but its
// sleep ends early, with rung true, when bell rings (another goroutine
// has something due sooner). The caller says where the spin starts
// (SpinStart, taken when its wait began: a wait resumed after another
// event is still as long as the whole, and its spin as wide); spinFrom
// equal to t does not spin, and returns when the kernel wakes it, tens
// of microseconds after t. It always sleeps as SleepUntil sleeps a long
// wait (sleepDedicated), whose last holdSpan keeps the processor: meant
// for a goroutine whose waits are long, on a Thread that Held.
func (c PreciseClock) Await(ctx context.Context, t, spinFrom time.Time, bell *Bell) (rung bool, err error) {
	spin := spinFrom.Before(t)
	if time.Until(spinFrom) > 0 {
		if sleepDedicated(ctx, spinFrom, c.yielded, bell) {
			return true, nil
		}
		if spin && ctx.Err() == nil {
			c.woke(spinFrom)
		}
	}
	if spin {
		spinUntil(ctx, t)
	}
	return false, ctx.Err()
}

// Priority says, for run.json, at what priority a Thread's long waits
// run, given what CheckRealtime returned: "realtime", or "normal" and why.
func Priority(realtime error) string {
	if realtime != nil {
		return "normal (" + realtime.Error() + ")"
	}
	return "realtime"
}

// sleepChunk bounds each kernel sleep of SleepUntil: an interrupted run
// stops waiting within this long.
const sleepChunk = 50 * time.Millisecond

// kernelSleepUntil sleeps in the kernel (fineSleep) until t, in chunks of
// sleepChunk, and returns early when ctx ends, or with true when b (nil:
// none) rings.
func kernelSleepUntil(ctx context.Context, t time.Time, b *Bell) bool {
	for ctx.Err() == nil && time.Until(t) > 0 {
		step := time.Now().Add(sleepChunk)
		if t.Before(step) {
			step = t
		}
		if fineSleep(step, b) {
			return true
		}
	}
	return false
}

// spinUntil busy-waits until t, yielding the processor while more than
// pureSpin remains. It returns early when ctx ends.
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
