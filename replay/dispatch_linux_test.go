package replay

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/pace"
)

// onThread runs wait as the pacer runs its waits, on a goroutine locked
// to its thread; it returns that thread's id, and when wait returned.
func onThread(wait func()) (tid int, returned <-chan time.Time) {
	tids, r := make(chan int), make(chan time.Time, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so no other
		// goroutine runs on it afterwards and a reply fired there is the
		// pacer's.
		runtime.LockOSThread()
		tids <- threadID()
		wait()
		r <- time.Now()
	}()
	return <-tids, r
}

// returnedAt waits for a wait started by onThread to return, and fails
// the test if it returned before t.
func returnedAt(t *testing.T, returned <-chan time.Time, due time.Time) {
	t.Helper()
	select {
	case at := <-returned:
		if at.Before(due) {
			t.Fatalf("the wait returned at %v, before the spec's due time %v", at, due)
		}
	case <-time.After(time.Minute):
		t.Fatal("the wait did not return")
	}
}

// A hosting pacer waiting for a spec fires the replies due before it, in
// due order and never early, including one scheduled while it sleeps for
// a later one (the bell wakes it: the reply leaves long before the one
// the pacer slept for); the dispatcher's goroutine fires none of them. A
// reply due after the spec is left to the goroutine once the pacer stops
// hosting.
func TestPacerHostsTheDispatcher(t *testing.T) {
	t.Parallel()
	d, fired := runDispatcher(t, nil)
	now := time.Now()
	spec := now.Add(1200 * time.Millisecond)
	second := &statusState{meta: recMeta{index: 2}, due: now.Add(time.Second)}
	after := &statusState{meta: recMeta{index: 3}, due: spec.Add(20 * time.Millisecond)}
	d.schedule(second)
	d.schedule(after)
	c := pace.NewPreciseClock(0)
	pacer, returned := onThread(func() { _ = d.hostUntil(context.Background(), c, spec) })
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
	returnedAt(t, returned, spec)
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
	c := pace.NewPreciseClock(0)
	pacer, returned := onThread(func() { _ = d.hostUntil(context.Background(), c, spec) })
	if f := next(t, fired); f.s != reply || f.tid == pacer {
		t.Fatalf("fired index %d on thread %d, want index 1 by the goroutine, not the pacer's %d", f.s.meta.index, f.tid, pacer)
	}
	returnedAt(t, returned, spec)
}
