package replay

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/pace"
)

// hostOnThread runs d.hostUntil(t) as the pacer does, on a goroutine
// locked to its thread; it returns that thread's id, and when hostUntil
// returned.
func hostOnThread(d *dispatcher, t time.Time) (tid int, returned <-chan time.Time) {
	tids, r := make(chan int), make(chan time.Time, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so no other
		// goroutine runs on it afterwards and a reply fired there is the
		// pacer's.
		runtime.LockOSThread()
		tids <- threadID()
		_ = d.hostUntil(context.Background(), pace.NewPreciseClock(0), t)
		r <- time.Now()
	}()
	return <-tids, r
}

// A pacer waiting for a spec fires the replies due before it, in due
// order and never early, including one scheduled while it sleeps for a
// later one (the bell wakes it: the reply leaves long before the one the
// pacer slept for); the dispatcher's goroutine fires none of them. A reply due after the spec is left to the goroutine once the
// pacer stops hosting.
func TestPacerHostsTheDispatcher(t *testing.T) {
	t.Parallel()
	d, fired := runDispatcher(t, nil)
	now := time.Now()
	spec := now.Add(1200 * time.Millisecond)
	second := &statusState{meta: recMeta{index: 2}, due: now.Add(time.Second)}
	after := &statusState{meta: recMeta{index: 3}, due: spec.Add(20 * time.Millisecond)}
	d.schedule(second)
	d.schedule(after)
	pacer, returned := hostOnThread(d, spec)
	testwait.Until(t, "the pacer to sleep for the second reply", func() bool {
		return d.hosted.Load() && d.sleepsFor.Load() == second.due.UnixNano()
	})
	first := &statusState{meta: recMeta{index: 1}, due: time.Now().Add(30 * time.Millisecond)}
	d.schedule(first)
	for _, want := range []*statusState{first, second} {
		f := next(t, fired)
		if f.s != want || f.at.Before(want.due) || f.tid != pacer {
			t.Fatalf("fired index %d at %v on thread %d, want index %d at or after %v on the pacer's %d",
				f.s.meta.index, f.at, f.tid, want.meta.index, want.due, pacer)
		}
		if want == first && !f.at.Before(second.due) {
			t.Fatalf("index 1 fired at %v, with index 2: the pacer slept on for it", f.at)
		}
	}
	var at time.Time
	select {
	case at = <-returned:
	case <-time.After(time.Minute):
		t.Fatal("hostUntil did not return at the spec's due time")
	}
	if at.Before(spec) {
		t.Fatalf("hostUntil returned at %v, before the spec's due time %v", at, spec)
	}
	select {
	case f := <-fired:
		t.Fatalf("index %d fired while the pacer waited, due after its spec", f.s.meta.index)
	default:
	}
	d.unhost()
	if f := next(t, fired); f.s != after || f.tid == pacer || f.at.Before(after.due) {
		t.Fatalf("fired index %d at %v on thread %d, want index 3 at or after %v by the goroutine", f.s.meta.index, f.at, f.tid, after.due)
	}
}

// A hosting pacer never waits for an in-flight slot: a reply due while
// none is free goes back to the dispatcher's goroutine (which may wait for
// one), and the pacer keeps its spec's time.
func TestPacerLeavesAReplyWithoutASlotToTheGoroutine(t *testing.T) {
	t.Parallel()
	d, fired := runDispatcher(t, func() bool { return false })
	now := time.Now()
	spec := now.Add(200 * time.Millisecond)
	reply := &statusState{meta: recMeta{index: 1}, due: now.Add(20 * time.Millisecond)}
	d.schedule(reply)
	pacer, returned := hostOnThread(d, spec)
	if f := next(t, fired); f.s != reply || f.tid == pacer {
		t.Fatalf("fired index %d on thread %d, want index 1 by the goroutine, not the pacer's %d", f.s.meta.index, f.tid, pacer)
	}
	select {
	case at := <-returned:
		if at.Before(spec) {
			t.Fatalf("hostUntil returned at %v, before the spec's due time %v", at, spec)
		}
	case <-time.After(time.Minute):
		t.Fatal("hostUntil did not return")
	}
}
