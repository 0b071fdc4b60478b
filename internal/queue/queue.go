// Package queue is the one unbounded FIFO of cereplay: a producer never
// waits for its consumer. Stream goroutines hand work to one worker through
// it (a stalled gRPC stream stalls the server for every client, so the
// goroutine reading it must never block), and Maestro itself keeps pending
// events in database tables, which an unbounded queue stands in for.
package queue

import "sync"

// Queue is an unbounded FIFO for one consumer. The zero value is not
// ready; use New.
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	head   int
	closed bool
	ready  chan struct{} // capacity 1: items may be waiting, or the queue closed
}

// New returns an empty queue.
func New[T any]() *Queue[T] { return &Queue[T]{ready: make(chan struct{}, 1)} }

// Push appends v without blocking and reports whether it was queued: after
// Close it is dropped.
func (q *Queue[T]) Push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *Queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready receives when items may be waiting or the queue was closed: a
// consumer that also waits on other things selects on it, then calls
// TakeAll or TryPop.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Pop waits for the next item; ok is false once the queue is closed (what
// was still waiting is left to TakeAll).
func (q *Queue[T]) Pop() (v T, ok bool) {
	for {
		if v, ok, closed := q.tryPop(); ok || closed {
			return v, ok
		}
		<-q.ready
	}
}

// TryPop returns the next item without waiting.
func (q *Queue[T]) TryPop() (v T, ok bool) {
	v, ok, _ = q.tryPop()
	return v, ok
}

func (q *Queue[T]) tryPop() (v T, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.signal() // let every waiter see it
		return v, false, true
	}
	if q.head == len(q.items) {
		return v, false, false
	}
	v = q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		// Reuse the backing array once drained, so a steady flow does not
		// grow it without bound.
		q.items, q.head = q.items[:0], 0
	case q.head >= 4096 && q.head*2 >= len(q.items):
		// Under a constant backlog, move the live tail to the front now
		// and then so consumed slots are released.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v, true, false
}

// TakeAll appends every waiting item to dst, in order, without waiting
// (also after Close), and reports whether the queue is closed.
func (q *Queue[T]) TakeAll(dst []T) ([]T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.items[q.head:]...)
	clear(q.items)
	q.items, q.head = q.items[:0], 0
	return dst, q.closed
}

// Len reports how many items are waiting.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// Close stops the queue: later pushes are dropped, Pop returns false, and
// Ready fires so a waiting consumer sees it.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
