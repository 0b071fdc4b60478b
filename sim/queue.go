package sim

import "sync"

// queue is an unbounded FIFO feeding one worker goroutine. Maestro keeps
// its pending spec and status events in database tables, so a Publish never
// waits for delivery; an unbounded in-memory queue gives the same decoupling.
// Items are small (a resource id and a kind), the bulky bytes stay in the
// store.
type queue[T any] struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []T
	head   int
	closed bool
}

func newQueue[T any]() *queue[T] {
	q := &queue[T]{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push appends an item; it is dropped when the queue is closed.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, v)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

// pop waits for the next item; ok is false once the queue is closed.
func (q *queue[T]) pop() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return v, false
	}
	v = q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		// Reuse the backing array once drained so a steady flow does not
		// grow it without bound.
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 4096 && q.head*2 >= len(q.items) {
		// Under a constant backlog, move the live tail to the front now
		// and then so consumed slots are released.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v, true
}

// len reports the number of waiting items.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// close wakes the worker and discards what is left.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.head = nil, 0
	q.cond.Broadcast()
	q.mu.Unlock()
}
