package replay

import (
	"context"
	"testing"
	"time"

	"github.com/cereplay/cereplay/pace"
)

// A reply scheduled while the dispatcher sleeps for a later one wakes it
// and leaves at its own due time, never early; the later one waits on.
func TestDispatcherWakesForAnEarlierReply(t *testing.T) {
	t.Parallel()
	type firing struct {
		s  *statusState
		at time.Time
	}
	fired := make(chan firing, 4)
	d, err := newDispatcher(pace.NewPreciseClock(0), func(s *statusState) { fired <- firing{s, time.Now()} })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.run(ctx)
	}()
	defer func() { cancel(); <-done }()

	late := &statusState{meta: recMeta{index: 1}, due: time.Now().Add(time.Hour)}
	d.schedule(late)
	for d.sleepsFor.Load() != late.due.UnixNano() {
		time.Sleep(time.Millisecond) // until the dispatcher sleeps for late
	}
	early := &statusState{meta: recMeta{index: 2}, due: time.Now().Add(20 * time.Millisecond)}
	d.schedule(early)
	select {
	case f := <-fired:
		if f.s != early || f.at.Before(early.due) {
			t.Fatalf("fired index %d at %v, want index 2 at or after %v", f.s.meta.index, f.at, early.due)
		}
	case <-time.After(time.Minute):
		t.Fatal("the earlier reply was not fired: the dispatcher slept on for the later one")
	}
	// Back to sleep for late, which is not due.
	for d.sleepsFor.Load() != late.due.UnixNano() {
		time.Sleep(time.Millisecond)
	}
	select {
	case f := <-fired:
		t.Fatalf("index %d fired an hour early", f.s.meta.index)
	default:
	}
}
