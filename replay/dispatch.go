package replay

import (
	"container/heap"
	"context"
	"runtime"
	"time"
)

// dispatcher fires status replies at their due time (delivery of the spec
// plus the scaled recorded delay). Due times arrive in any order, so it
// keeps a heap and one goroutine that sleeps until the earliest one, wakes
// early when an earlier one is added, and spins the last stretch like
// PreciseClock, so replies leave as precisely as spec events.
type dispatcher struct {
	clock Clock
	add   chan *statusState
	fire  func(*statusState)
	h     statusHeap
}

func newDispatcher(c Clock, fire func(*statusState)) *dispatcher {
	return &dispatcher{clock: c, add: make(chan *statusState, 4096), fire: fire}
}

// schedule queues s; it blocks only if the dispatcher is far behind.
func (d *dispatcher) schedule(ctx context.Context, s *statusState) {
	select {
	case d.add <- s:
	case <-ctx.Done():
	}
}

// run fires queued statuses until ctx ends.
func (d *dispatcher) run(ctx context.Context) {
	pc, precise := d.clock.(PreciseClock)
	spin := pc.SpinWindow
	if spin == 0 {
		spin = DefaultSpinWindow
	}
	for {
		if d.h.Len() == 0 {
			select {
			case s := <-d.add:
				heap.Push(&d.h, s)
			case <-ctx.Done():
				return
			}
			continue
		}
		next := d.h[0]
		if !precise {
			// A fake clock jumps; drain what is queued so the earliest
			// due time wins, then sleep on the clock itself.
			if d.drainAdds() {
				continue
			}
			if err := d.clock.SleepUntil(ctx, next.due); err != nil {
				return
			}
		} else if wait := time.Until(next.due); wait > spin {
			t := time.NewTimer(wait - spin)
			select {
			case s := <-d.add:
				t.Stop()
				heap.Push(&d.h, s)
				continue
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				continue
			}
		} else if wait > 0 {
			earlier := false
			for i := 0; ; i++ {
				left := time.Until(next.due)
				if left <= 0 {
					break
				}
				if d.drainAdds() && d.h[0] != next {
					earlier = true
					break
				}
				if i&255 == 0 && ctx.Err() != nil {
					return
				}
				if left > pureSpin {
					runtime.Gosched()
				}
			}
			if earlier {
				continue
			}
		}
		heap.Pop(&d.h)
		d.fire(next)
	}
}

// drainAdds moves queued statuses into the heap without blocking and
// reports whether there were any.
func (d *dispatcher) drainAdds() bool {
	got := false
	for {
		select {
		case s := <-d.add:
			heap.Push(&d.h, s)
			got = true
		default:
			return got
		}
	}
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
