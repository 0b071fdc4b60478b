package replay

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

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
//
// While a paced replay's pacer waits on its real-time Thread, the pacer
// fires the replies instead (hostUntil), between its sends, and the
// goroutine waits for it to stop (unhost). The pacer's kernel sleep then
// ends at the next reply as at the next send: no timer is armed for a
// reply and no goroutine woken through the network poller, which a
// paced run paid at every reply, and a reply leaves as soon as the thread
// wakes instead of after the poller's wake-up. The goroutine keeps the
// replies the pacer cannot take: at high rates and at --max, where the
// pacer is not on its Thread, and after it has stopped.
type dispatcher struct {
	fire func(*statusState)
	// canFire says whether a reply may be fired without waiting (an
	// in-flight slot is free): a hosting pacer must never wait for one.
	canFire func() bool
	alarm   *pace.Alarm
	bell    pace.Bell // rung for a hosting pacer as alarm is woken for the goroutine

	mu sync.Mutex // guards h between the goroutine and a hosting pacer
	h  statusHeap

	// hosted is true while the pacer fires the replies; the goroutine
	// then waits on unhosted.
	hosted   atomic.Bool
	unhosted chan struct{}

	// sleepsFor is the due time (Unix nanoseconds) the dispatcher (or a
	// hosting pacer) sleeps for, or math.MinInt64 while the goroutine
	// waits on the queue with nothing in its heap (then every push wakes
	// it).
	sleepsFor atomic.Int64

	// Statuses are handed over through an unbounded queue, never a
	// blocking channel: schedule runs on an agent's stream goroutine, and
	// an agent that stops reading stalls the server for every agent.
	in    *queue.Queue[*statusState]
	taken []*statusState // reused by drainAdds
}

func newDispatcher(c pace.Clock, fire func(*statusState), canFire func() bool) (*dispatcher, error) {
	alarm, err := pace.NewAlarm(c)
	if err != nil {
		return nil, fmt.Errorf("replay: reply dispatcher: %w", err)
	}
	d := &dispatcher{fire: fire, canFire: canFire, alarm: alarm, in: queue.New[*statusState](), unhosted: make(chan struct{}, 1)}
	d.sleepsFor.Store(math.MinInt64)
	return d, nil
}

// schedule queues s without blocking, and wakes whoever fires the replies
// if s is due before what it sleeps for.
func (d *dispatcher) schedule(s *statusState) {
	d.in.Push(s)
	if s.due.UnixNano() < d.sleepsFor.Load() {
		if d.hosted.Load() {
			d.bell.Ring()
		} else {
			d.alarm.Wake()
		}
	}
}

// run fires queued statuses until ctx ends, except while a pacer hosts
// the dispatcher.
func (d *dispatcher) run(ctx context.Context) {
	defer d.alarm.Close()
	for {
		d.mu.Lock()
		if d.hosted.Load() {
			// Looked at under the lock: while the pacer hosts, sleepsFor
			// is its, and a store here would hide it from schedule.
			d.mu.Unlock()
			select {
			case <-d.unhosted:
			case <-ctx.Done():
				return
			}
			continue
		}
		d.drainAdds()
		if d.h.Len() == 0 {
			d.sleepsFor.Store(math.MinInt64)
			d.mu.Unlock()
			select {
			case <-d.in.Ready():
			case <-d.unhosted:
			case <-ctx.Done():
				return
			}
			continue
		}
		next := d.h[0]
		d.sleepsFor.Store(next.due.UnixNano())
		d.mu.Unlock()
		// A status pushed since the drain may have compared its due time
		// with the one before: take it into the heap first.
		if d.in.Len() > 0 {
			continue
		}
		woken, err := d.alarm.WaitUntil(ctx, next.due)
		if err != nil {
			return
		}
		if woken || !d.pop(next) {
			continue // something due earlier was queued, or the pacer hosts
		}
		d.fire(next)
	}
}

// pop takes next off the heap if it is still the earliest there and the
// goroutine still fires the replies.
func (d *dispatcher) pop(next *statusState) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hosted.Load() || d.h.Len() == 0 || d.h[0] != next {
		return false
	}
	heap.Pop(&d.h)
	return true
}

// fireGuard is how long before a spec's spin a reply must be due for a
// hosting pacer to fire it first: firing takes tens of microseconds,
// and a reply due later waits for the spec rather than making it late.
const fireGuard = 50 * time.Microsecond

// hostUntil is the pacer's wait for a spec due at t, on its Thread: it
// fires the replies due before the spec's spin (less fireGuard), sleeping
// on c.Await until each, and then waits for t with the clock's spin. The
// spin is as wide as for the whole wait, not for what is left of it after
// the last reply (a wait of 10 ms or more spins 2 % of it). The goroutine
// stops firing until unhost.
func (d *dispatcher) hostUntil(ctx context.Context, c pace.PreciseClock, t time.Time) error {
	spinFrom := c.SpinStart(t)
	if !d.hosted.Swap(true) {
		d.alarm.Wake() // the goroutine may sleep for a reply
	}
	for {
		d.mu.Lock()
		d.drainAdds()
		target, from := t, spinFrom
		if d.h.Len() > 0 && d.h[0].due.Before(spinFrom.Add(-fireGuard)) {
			next := d.h[0]
			if !next.due.After(c.Now()) {
				if !d.canFire() {
					// Fire it on the goroutine, which may wait for a
					// slot; the spec waits as without a host.
					d.mu.Unlock()
					d.unhost()
					return c.SleepUntil(ctx, t)
				}
				heap.Pop(&d.h)
				d.mu.Unlock()
				d.fire(next)
				continue
			}
			target, from = next.due, next.due
		}
		d.sleepsFor.Store(target.UnixNano())
		d.mu.Unlock()
		if d.in.Len() > 0 {
			continue // see run
		}
		rung, err := c.Await(ctx, target, from, &d.bell)
		if err != nil {
			return err
		}
		if !rung && target.Equal(t) {
			return nil
		}
	}
}

// unhost hands the replies back to the goroutine: the pacer calls it
// before it waits other than in hostUntil, and when it stops.
func (d *dispatcher) unhost() {
	if d.hosted.Swap(false) {
		select {
		case d.unhosted <- struct{}{}:
		default:
		}
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
