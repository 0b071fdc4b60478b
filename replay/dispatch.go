package replay

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/cereplay/cereplay/internal/queue"
	"github.com/cereplay/cereplay/pace"
)

// dispatcher fires status replies at their due time (delivery of the spec
// plus the scaled recorded delay). Due times arrive in any order, so it
// keeps a heap and one goroutine that sleeps on an Alarm until the
// earliest one, so replies leave as precisely as spec events. A reply
// scheduled while it sleeps wakes it only when it is due before the one
// it sleeps for: at hundreds of replies a second, waking for each one
// cost more than firing them.
type dispatcher struct {
	fire  func(*statusState)
	h     statusHeap
	alarm *pace.Alarm

	// sleepsFor is the due time (Unix nanoseconds) the dispatcher sleeps
	// for, or math.MinInt64 while it waits on the queue with nothing in
	// its heap (then every push wakes it).
	sleepsFor atomic.Int64

	// Statuses are handed over through an unbounded queue, never a
	// blocking channel: schedule runs on an agent's stream goroutine, and
	// an agent that stops reading stalls the server for every agent.
	in    *queue.Queue[*statusState]
	taken []*statusState // reused by drainAdds
}

func newDispatcher(c pace.Clock, fire func(*statusState)) (*dispatcher, error) {
	alarm, err := pace.NewAlarm(c)
	if err != nil {
		return nil, fmt.Errorf("replay: reply dispatcher: %w", err)
	}
	d := &dispatcher{fire: fire, alarm: alarm, in: queue.New[*statusState]()}
	d.sleepsFor.Store(math.MinInt64)
	return d, nil
}

// schedule queues s without blocking, and wakes the dispatcher if s is due
// before what it sleeps for.
func (d *dispatcher) schedule(s *statusState) {
	d.in.Push(s)
	if s.due.UnixNano() < d.sleepsFor.Load() {
		d.alarm.Wake()
	}
}

// run fires queued statuses until ctx ends.
func (d *dispatcher) run(ctx context.Context) {
	defer d.alarm.Close()
	for {
		d.drainAdds()
		if d.h.Len() == 0 {
			d.sleepsFor.Store(math.MinInt64)
			select {
			case <-d.in.Ready():
			case <-ctx.Done():
				return
			}
			continue
		}
		next := d.h[0]
		d.sleepsFor.Store(next.due.UnixNano())
		// A status pushed since the drain may have compared its due time
		// with the one before: take it into the heap first.
		if d.in.Len() > 0 {
			continue
		}
		woken, err := d.alarm.WaitUntil(ctx, next.due)
		if err != nil {
			return
		}
		if woken {
			continue // something due earlier was queued
		}
		heap.Pop(&d.h)
		d.fire(next)
	}
}

// drainAdds moves queued statuses into the heap without blocking and
// reports whether there were any.
func (d *dispatcher) drainAdds() bool {
	d.taken, _ = d.in.TakeAll(d.taken[:0])
	for i, s := range d.taken {
		heap.Push(&d.h, s)
		d.taken[i] = nil
	}
	return len(d.taken) > 0
}

// statusHeap orders statuses by due time (then trace position, so equal
// due times keep trace order).
type statusHeap []*statusState

func (h statusHeap) Len() int { return len(h) }
func (h statusHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].meta.index < h[j].meta.index
	}
	return h[i].due.Before(h[j].due)
}
func (h statusHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *statusHeap) Push(x any)   { *h = append(*h, x.(*statusState)) }
func (h *statusHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}
