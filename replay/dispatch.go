package replay

import (
	"container/heap"
	"context"

	"github.com/cereplay/cereplay/internal/queue"
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

	// Statuses are handed over through an unbounded queue, never a
	// blocking channel: schedule runs on an agent's stream goroutine, and
	// an agent that stops reading stalls the server for every agent.
	in    *queue.Queue[*statusState]
	taken []*statusState // reused by drainAdds
}

func newDispatcher(c pace.Clock, fire func(*statusState)) *dispatcher {
	return &dispatcher{clock: c, fire: fire, in: queue.New[*statusState]()}
}

// schedule queues s without blocking.
func (d *dispatcher) schedule(s *statusState) { d.in.Push(s) }

// run fires queued statuses until ctx ends.
func (d *dispatcher) run(ctx context.Context) {
	for {
		if d.h.Len() == 0 {
			select {
			case <-d.in.Ready():
				d.drainAdds()
			case <-ctx.Done():
				return
			}
			continue
		}
		next := d.h[0]
		woken, err := pace.WaitUntil(ctx, d.clock, next.due, d.in.Ready())
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
