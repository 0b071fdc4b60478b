package replay

import (
	"context"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/pace"
)

// firing is one reply fired by a dispatcher under test: which, when, and
// on which thread (a hosting pacer's is locked to it).
type firing struct {
	s   *statusState
	at  time.Time
	tid int
}

// runDispatcher starts a dispatcher's goroutine on a precise clock whose
// fired replies go to the returned channel; canFire nil always allows.
func runDispatcher(t *testing.T, canFire func() bool) (*dispatcher, <-chan firing) {
	t.Helper()
	fired := make(chan firing, 16)
	if canFire == nil {
		canFire = func() bool { return true }
	}
	d, err := newDispatcher(pace.NewPreciseClock(0), func(s *statusState) {
		fired <- firing{s, time.Now(), threadID()}
	}, canFire)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d, fired
}

// next waits for the next reply fired.
func next(t *testing.T, fired <-chan firing) firing {
	t.Helper()
	select {
	case f := <-fired:
		return f
	case <-time.After(time.Minute):
		t.Fatal("no reply was fired")
		return firing{}
	}
}

// A reply scheduled while the dispatcher sleeps for a later one wakes it
// and leaves at its own due time, never early; the later one waits on.
func TestDispatcherWakesForAnEarlierReply(t *testing.T) {
	t.Parallel()
	d, fired := runDispatcher(t, nil)
	late := &statusState{meta: recMeta{index: 1}, due: time.Now().Add(time.Hour)}
	d.schedule(late)
	testwait.Until(t, "the dispatcher to sleep for the late reply", func() bool { return d.sleepsFor.Load() == late.due.UnixNano() })
	early := &statusState{meta: recMeta{index: 2}, due: time.Now().Add(20 * time.Millisecond)}
	d.schedule(early)
	if f := next(t, fired); f.s != early || f.at.Before(early.due) {
		t.Fatalf("fired index %d at %v, want index 2 at or after %v", f.s.meta.index, f.at, early.due)
	}
	testwait.Until(t, "the dispatcher to sleep for the late reply again", func() bool { return d.sleepsFor.Load() == late.due.UnixNano() })
	select {
	case f := <-fired:
		t.Fatalf("index %d fired an hour early", f.s.meta.index)
	default:
	}
}
