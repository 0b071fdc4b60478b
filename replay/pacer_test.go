package replay

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"
)

// A reader that finds the pacer's queue full waits until the pacer has
// freed refillBatch slots, not one: the pacer signals room only then. Every
// release arrives once and in order, and the reader is never more than
// pacerQueue ahead.
func TestReleaseQueueRefillsInBatches(t *testing.T) {
	r := &runner{releases: newReleaseQueue()}
	q := r.releases
	const total = pacerQueue + 3*refillBatch
	var put atomic.Int64
	go func() {
		for i := range total {
			r.pace(context.Background(), time.Time{}, func() { t.Errorf("release %d skipped", i) }, func() {})
			put.Add(1)
		}
		close(q.ch)
	}()
	testwait.Until(t, "a full queue", func() bool { return len(q.ch) == pacerQueue && put.Load() == pacerQueue })

	taken := 0
	take := func() {
		t.Helper()
		if _, ok := <-q.ch; !ok {
			t.Fatalf("queue closed after %d of %d releases", taken, total)
		}
		q.taken()
		taken++
	}
	for range refillBatch - 1 {
		take()
		if len(q.room) != 0 || put.Load() != pacerQueue {
			t.Fatalf("the reader was let in after %d releases were taken from a full queue, want %d", taken, refillBatch)
		}
	}
	take()
	testwait.Until(t, "the reader to refill", func() bool { return put.Load() >= pacerQueue+refillBatch })
	for range total - taken {
		take()
		if ahead := put.Load() - int64(taken); ahead > pacerQueue+1 {
			t.Fatalf("the reader is %d releases ahead of the pacer, want at most %d", ahead, pacerQueue+1)
		}
	}
	if _, ok := <-q.ch; ok {
		t.Fatalf("more than the %d releases put", total)
	}
}

// A reader waiting on a full queue when the run is interrupted skips its
// release instead of waiting for a pacer that has stopped.
func TestReleaseQueueSkipsWhenInterrupted(t *testing.T) {
	r := &runner{releases: newReleaseQueue()}
	for range pacerQueue {
		r.pace(context.Background(), time.Time{}, func() { t.Fatal("skipped with room") }, func() {})
	}
	ctx, cancel := context.WithCancel(context.Background())
	skipped := make(chan struct{})
	go r.pace(ctx, time.Time{}, func() { close(skipped) }, func() {})
	cancel()
	select {
	case <-skipped:
	case <-time.After(time.Minute):
		t.Fatal("the waiting release was not skipped after the interrupt")
	}
	if len(r.releases.ch) != pacerQueue {
		t.Fatalf("queue holds %d, want %d: the skipped release was queued", len(r.releases.ch), pacerQueue)
	}
}
