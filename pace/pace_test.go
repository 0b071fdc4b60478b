package pace

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"
)

func TestPacers(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name   string
		p      Pacer
		n      uint64
		offset time.Duration
		want   time.Duration
	}{
		{"speed 1 keeps offsets", SpeedPacer{Speed: 1}, 7, 1500 * ms, 1500 * ms},
		{"speed 0 means 1", SpeedPacer{}, 7, 1500 * ms, 1500 * ms},
		{"speed 2 halves", SpeedPacer{Speed: 2}, 7, 1500 * ms, 750 * ms},
		{"speed 0.5 doubles", SpeedPacer{Speed: 0.5}, 0, 1500 * ms, 3000 * ms},
		{"speed ignores position", SpeedPacer{Speed: 4}, 1 << 40, 4 * time.Second, time.Second},
		{"speed saturates", SpeedPacer{Speed: 1e-9}, 0, time.Duration(math.MaxInt64 / 2), time.Duration(math.MaxInt64)},
		{"rate first is at T0", RatePacer{Rate: 2000}, 0, time.Hour, 0},
		{"rate ignores offsets", RatePacer{Rate: 2000}, 1, time.Hour, 500 * time.Microsecond},
		{"rate 2000 event 4000", RatePacer{Rate: 2000}, 4000, 0, 2 * time.Second},
		{"rate 3 rounds", RatePacer{Rate: 3}, 1, 0, 333333333},
		{"rate 0 is at once", RatePacer{}, 9, time.Second, 0},
		{"max is at once", MaxPacer{}, 1e6, time.Hour, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Due(tc.n, tc.offset); got != tc.want {
				t.Errorf("Due(%d, %v) = %v, want %v", tc.n, tc.offset, got, tc.want)
			}
		})
	}
}

// A rate schedule is computed from T0, never by adding gaps: the due time
// of event n does not drift, however many events came before.
func TestRatePacerDoesNotDrift(t *testing.T) {
	t.Parallel()
	p := RatePacer{Rate: 3} // 1/3 s does not divide a nanosecond evenly
	var sum time.Duration
	for n := uint64(1); n <= 3_000_000; n++ {
		sum += p.Due(n, 0) - p.Due(n-1, 0)
	}
	if got, want := p.Due(3_000_000, 0), 1_000_000*time.Second; got != want || sum != want {
		t.Fatalf("Due(3e6) = %v, summed gaps %v, want %v", got, sum, want)
	}
}

// The mode-dependent decisions a replay leaves to its pacer.
func TestPacerModes(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name             string
		p                Pacer
		uncounted, reply time.Duration
		paced            bool
	}{
		{"speed 2", SpeedPacer{Speed: 2}, 50 * ms, 10 * ms, true},
		{"rate", RatePacer{Rate: 20}, 7 * ms, 20 * ms, true},
		{"max", MaxPacer{}, 0, 0, false},
	} {
		if got := tc.p.UncountedDue(100*ms, 7*ms); got != tc.uncounted {
			t.Errorf("%s: UncountedDue(100ms, last 7ms) = %v, want %v", tc.name, got, tc.uncounted)
		}
		if got := tc.p.ReplyDelay(20 * ms); got != tc.reply {
			t.Errorf("%s: ReplyDelay(20ms) = %v, want %v", tc.name, got, tc.reply)
		}
		if got := tc.p.Paced(); got != tc.paced {
			t.Errorf("%s: Paced() = %v, want %v", tc.name, got, tc.paced)
		}
		if got, want := Dedicated(PreciseClock{}, tc.p), tc.paced; got != want {
			t.Errorf("%s: Dedicated(PreciseClock) = %v, want %v", tc.name, got, want)
		}
		if Dedicated(NewFakeClock(time.Time{}), tc.p) {
			t.Errorf("%s: Dedicated(FakeClock) = true", tc.name)
		}
	}
}

// An Alarm's WaitUntil returns at the due time when nothing wakes it, at
// once when a Wake came first, early when Wake comes while it waits, and
// when its context ends, on the precise and on the fake clock; a Wake
// after Close does nothing.
func TestAlarm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []Clock{NewPreciseClock(0), NewFakeClock(time.Unix(1, 0))} {
		a, err := NewAlarm(c)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // the same timer, again and again
			due := c.Now().Add(3 * time.Millisecond)
			woken, err := a.WaitUntil(ctx, due)
			if err != nil || woken || c.Now().Before(due) {
				t.Fatalf("%T: no wake-up: woken %v, err %v, now %v before due %v", c, woken, err, c.Now(), due)
			}
		}
		a.Wake()
		if woken, err := a.WaitUntil(ctx, c.Now().Add(time.Hour)); !woken || err != nil {
			t.Fatalf("%T: wake-up before the wait: woken %v, err %v", c, woken, err)
		}
		// The wake-up was used up: the next wait runs to its due time.
		due := c.Now().Add(2 * time.Millisecond)
		if woken, err := a.WaitUntil(ctx, due); woken || err != nil || c.Now().Before(due) {
			t.Fatalf("%T: wait after a used wake-up: woken %v, err %v", c, woken, err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		a.Wake()
	}
	a, err := NewAlarm(NewPreciseClock(0))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, far := range []time.Duration{time.Hour, 500 * time.Microsecond} { // in the sleep, in the spin
		done := make(chan bool)
		waiting := make(chan struct{})
		go func() {
			close(waiting)
			woken, _ := a.WaitUntil(ctx, time.Now().Add(far))
			done <- woken
		}()
		<-waiting
		a.Wake()
		if !<-done && far == time.Hour {
			t.Fatal("a wake-up during the wait did not end it early")
		}
		// A wait that reached its due time before the Wake leaves the
		// wake-up for the next wait: use it up.
		_, _ = a.WaitUntil(ctx, time.Now())
		a.woken.Store(false)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.WaitUntil(cctx, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("WaitUntil outlived its context")
	}
}

func TestFakeClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	c := NewFakeClock(t0)
	ctx := context.Background()
	if err := c.SleepUntil(ctx, t0.Add(time.Second)); err != nil || !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("SleepUntil forward: now %v, err %v", c.Now(), err)
	}
	_ = c.SleepUntil(ctx, t0) // the past: no change
	if !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("SleepUntil into the past moved the clock to %v", c.Now())
	}
	c.Advance(time.Minute)
	if !c.Now().Equal(t0.Add(time.Minute + time.Second)) {
		t.Fatalf("Advance: %v", c.Now())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.SleepUntil(cctx, t0.Add(time.Hour)); err == nil {
		t.Fatal("SleepUntil with a cancelled context returned nil")
	}
}

// PreciseClock never returns before the due time (also when the sleep
// takes several chunks), and honours cancellation while it sleeps.
func TestPreciseClockNeverEarly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Without a spin (-1) the fine sleep alone must not wake early either.
	for _, c := range []PreciseClock{{}, NewPreciseClock(0), {SpinWindow: -1}, {SpinWindow: 20 * time.Microsecond}} {
		for _, d := range []time.Duration{0, 50 * time.Microsecond, 700 * time.Microsecond, 1600 * time.Microsecond, 3 * time.Millisecond, 3*sleepChunk/2 + time.Millisecond} {
			due := time.Now().Add(d)
			if err := c.SleepUntil(ctx, due); err != nil {
				t.Fatal(err)
			}
			if now := time.Now(); now.Before(due) {
				t.Fatalf("spin window %v, wait %v: returned %v before due", c.SpinWindow, d, due.Sub(now))
			}
		}
	}
	c := PreciseClock{}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.SleepUntil(cctx, start.Add(time.Hour)); err == nil {
		t.Fatal("SleepUntil outlived its context")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("SleepUntil ignored cancellation")
	}
}

// The adapted spin window follows the wake-ups' lag: narrow while they are
// prompt, wide at once after a late one, narrow again as it fades, and
// never outside its bounds.
func TestWakeLagWindow(t *testing.T) {
	var w wakeLag
	if got := w.window(DefaultSpinWindow); got != minSpinWindow {
		t.Fatalf("no wake-up seen: window %v, want the narrowest, %v", got, minSpinWindow)
	}
	for range lagSamples {
		w.observe(8 * time.Microsecond)
	}
	if got, want := w.window(DefaultSpinWindow), 8*time.Microsecond+spinMargin; got != want {
		t.Fatalf("prompt wake-ups (8µs late): window %v, want %v", got, want)
	}
	// Late wake-ups up to a tenth of the recent ones are not covered...
	for range lagSamples / 10 {
		w.observe(60 * time.Microsecond)
	}
	if got, want := w.window(DefaultSpinWindow), 8*time.Microsecond+spinMargin; got != want {
		t.Fatalf("after %d wake-ups 60µs late: window %v, want %v", lagSamples/10, got, want)
	}
	// ... one more is.
	w.observe(60 * time.Microsecond)
	if got, want := w.window(DefaultSpinWindow), 60*time.Microsecond+spinMargin; got != want {
		t.Fatalf("after %d wake-ups 60µs late: window %v, want %v", lagSamples/10+1, got, want)
	}
	for range lagSamples / 5 {
		w.observe(time.Millisecond)
	}
	if got := w.window(DefaultSpinWindow); got != DefaultSpinWindow {
		t.Fatalf("after wake-ups 1ms late: window %v, want the ceiling %v", got, DefaultSpinWindow)
	}
	for range lagSamples {
		w.observe(3 * time.Microsecond)
	}
	if got := w.window(DefaultSpinWindow); got != minSpinWindow {
		t.Fatalf("after %d prompt wake-ups the late ones still count: window %v", lagSamples, got)
	}
	// A clock with a fixed window, or none, does not adapt.
	if got := (PreciseClock{SpinWindow: 300 * time.Microsecond, lag: &w}).spinWindow(); got != 300*time.Microsecond {
		t.Fatalf("--spin-window 300µs: window %v", got)
	}
	if got := (PreciseClock{}).spinWindow(); got != DefaultSpinWindow {
		t.Fatalf("zero PreciseClock: window %v, want %v", got, DefaultSpinWindow)
	}
}

// A long wait yields its processor at most once in yieldEvery: right after
// a yield none is due, and one is due again once yieldEvery has passed. A
// clock that keeps no record (the zero PreciseClock) yields every time.
func TestLastYield(t *testing.T) {
	var none *lastYield
	if !none.due() {
		t.Fatal("no record: a yield is not due")
	}
	none.mark() // keeps nothing, and does not fail
	y := newLastYield()
	marked := time.Now() // before the mark, so time since it bounds time since the mark
	y.mark()
	if y.due() && time.Since(marked) < yieldEvery {
		t.Fatalf("a yield is due %v after the last one", time.Since(marked))
	}
	for !y.due() {
		runtime.Gosched()
	}
	if since := time.Since(marked); since < yieldEvery {
		t.Fatalf("a yield came due %v after the last one, before %v", since, yieldEvery)
	}
	if NewPreciseClock(0).yielded == nil {
		t.Fatal("NewPreciseClock keeps no record of its yields")
	}
}

// The default window is widened to 2% of a long wait (a low rate's), and
// not for the short waits of a high rate, where the spin is paid at every
// send; a window set by the user is never widened.
func TestSpinForWidensLongWaitsOnly(t *testing.T) {
	c := NewPreciseClock(0)
	for range lagSamples {
		c.lag.observe(8 * time.Microsecond)
	}
	adapted := 8*time.Microsecond + spinMargin
	for _, tc := range []struct {
		wait, want time.Duration
	}{
		{2 * time.Millisecond, adapted},           // 500/s
		{widenAbove - 1, adapted},                 // just above 100/s
		{widenAbove, widenAbove / 50},             // 100/s: 200µs
		{50 * time.Millisecond, time.Millisecond}, // 20/s
		{time.Second, maxSpinWindow},              // capped
	} {
		if got := c.spinFor(tc.wait); got != tc.want {
			t.Errorf("wait %v: spin %v, want %v", tc.wait, got, tc.want)
		}
	}
	if got := NewPreciseClock(300 * time.Microsecond).spinFor(50 * time.Millisecond); got != 300*time.Microsecond {
		t.Errorf("--spin-window 300µs, wait 50ms: spin %v, want 300µs", got)
	}
}

// awaitResult is what one Await returned, and when.
type awaitResult struct {
	rung bool
	err  error
	at   time.Time
}

// goAwait runs Await on a goroutine locked to its thread, as a replay's
// pacer on its Thread does, and says on started when it is about to call
// it.
func goAwait(ctx context.Context, c PreciseClock, t time.Time, b *Bell, spin bool) (started <-chan struct{}, result <-chan awaitResult) {
	spinFrom := t
	if spin {
		spinFrom = c.SpinStart(t)
	}
	s, r := make(chan struct{}), make(chan awaitResult, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		close(s)
		rung, err := c.Await(ctx, t, spinFrom, b)
		r <- awaitResult{rung, err, time.Now()}
	}()
	return s, r
}

// receive waits for an Await's result, failing the test after a minute (a
// ring that was lost sleeps an hour).
func receive(t *testing.T, what string, result <-chan awaitResult) awaitResult {
	t.Helper()
	select {
	case r := <-result:
		return r
	case <-time.After(time.Minute):
		t.Fatalf("%s: Await did not return", what)
		return awaitResult{}
	}
}

// A Ring ends an Await at once, whether it comes during the sleep or just
// before it; without one, Await returns at its time and never early, with
// or without its spin; a cancelled context ends it too.
func TestAwaitBell(t *testing.T) {
	t.Parallel()
	c := NewPreciseClock(0)
	ctx := context.Background()
	var b Bell
	for i := 0; i < 50; i++ {
		started, result := goAwait(ctx, c, time.Now().Add(time.Hour), &b, i%2 == 0)
		<-started
		b.Ring()
		if r := receive(t, "a ring", result); !r.rung || r.err != nil {
			t.Fatalf("ring %d: Await = %v, %v; want rung", i, r.rung, r.err)
		}
	}
	// Rings while nobody waits are kept, as one.
	b.Ring()
	b.Ring()
	hour := time.Now().Add(time.Hour)
	if rung, err := c.Await(ctx, hour, hour, &b); !rung || err != nil {
		t.Fatalf("a ring kept: Await = %v, %v; want rung", rung, err)
	}
	for _, spin := range []bool{true, false} {
		due := time.Now().Add(20 * time.Millisecond)
		_, result := goAwait(ctx, c, due, &b, spin)
		r := receive(t, "no ring", result)
		if r.rung || r.err != nil || r.at.Before(due) {
			t.Fatalf("spin %v: Await = %v, %v at %v, want not rung at or after %v", spin, r.rung, r.err, r.at, due)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	started, result := goAwait(cctx, c, time.Now().Add(time.Hour), &b, true)
	<-started
	cancel()
	if r := receive(t, "a cancel", result); r.rung || r.err != context.Canceled {
		t.Fatalf("cancelled: Await = %v, %v; want context.Canceled", r.rung, r.err)
	}
}
