package replay

import (
	"container/heap"
	"context"
	"sync"

	"github.com/cereplay/cereplay/pace"
)

// dispatcher fires status replies at their due time (delivery of the spec
// plus the scaled recorded delay). Due times arrive in any order, so it
// keeps a heap and one goroutine that waits until the earliest one
// (pace.WaitUntil) and wakes early when another is added, so replies leave
// as precisely as spec events.
type dispatcher struct {
	clock pace.Clock
	fire  func(*statusState)
	h     statusHeap

	// Statuses are handed over through an unbounded list, never a
	// blocking channel: schedule runs on an agent's stream goroutine, and
	// an agent that stops reading stalls the server for every agent.
	mu   sync.Mutex
	in   []*statusState
	wake chan struct{} // capacity 1: "in" is not empty
}

func newDispatcher(c pace.Clock, fire func(*statusState)) *dispatcher {
	return &dispatcher{clock: c, fire: fire, wake: make(chan struct{}, 1)}
}

// schedule queues s without blocking.
func (d *dispatcher) schedule(_ context.Context, s *statusState) {
	d.mu.Lock()
	d.in = append(d.in, s)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run fires queued statuses until ctx ends.
func (d *dispatcher) run(ctx context.Context) {
	for {
		if d.h.Len() == 0 {
			select {
			case <-d.wake:
				d.drainAdds()
			case <-ctx.Done():
				return
			}
			continue
		}
		next := d.h[0]
		woken, err := pace.WaitUntil(ctx, d.clock, next.due, d.wake)
		if err != nil {
			return
		}
		if woken {
			// Something was queued: it may be due earlier than next.
			d.drainAdds()
			continue
		}
		heap.Pop(&d.h)
		d.fire(next)
	}
}

// drainAdds moves queued statuses into the heap without blocking and
// reports whether there were any.
func (d *dispatcher) drainAdds() bool {
	d.mu.Lock()
	in := d.in
	d.in = nil
	d.mu.Unlock()
	for _, s := range in {
		heap.Push(&d.h, s)
	}
	return len(in) > 0
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
