package queue

import (
	"sync"
	"testing"
)

// Items come out in the order they went in, across the compaction of a
// long backlog, with one producer per goroutine never blocked.
func TestOrderAndCompaction(t *testing.T) {
	t.Parallel()
	q := New[int]()
	const n = 20000
	for i := 0; i < n; i++ {
		q.Push(i)
	}
	for i := 0; i < n/2; i++ {
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop %d: got %d, %v", i, v, ok)
		}
	}
	for i := n; i < n+10; i++ {
		q.Push(i)
	}
	if got := q.Len(); got != n/2+10 {
		t.Fatalf("Len %d, want %d", got, n/2+10)
	}
	rest, closed := q.TakeAll(nil)
	if closed || len(rest) != n/2+10 || rest[0] != n/2 || rest[len(rest)-1] != n+9 {
		t.Fatalf("TakeAll: %d items from %v to %v, closed %v", len(rest), rest[0], rest[len(rest)-1], closed)
	}
	if _, ok := q.TryPop(); ok {
		t.Fatal("TryPop on an empty queue returned an item")
	}
}

// A consumer waiting in Pop gets items pushed from many goroutines, and
// Close wakes it; after Close pushes are refused and TakeAll still returns
// what was left.
func TestConcurrentAndClose(t *testing.T) {
	t.Parallel()
	q := New[int]()
	const producers, each = 8, 1000
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				q.Push(i)
			}
		}()
	}
	got := 0
	for got < producers*each {
		if _, ok := q.Pop(); !ok {
			t.Fatal("Pop returned closed on an open queue")
		}
		got++
	}
	wg.Wait()
	done := make(chan bool)
	go func() {
		_, ok := q.Pop()
		done <- ok
	}()
	q.Push(7)
	if ok := <-done; !ok {
		t.Fatal("a waiting Pop missed a push")
	}
	go func() {
		_, ok := q.Pop()
		done <- ok
	}()
	q.Close()
	if ok := <-done; ok {
		t.Fatal("Pop after Close returned an item")
	}
	if q.Push(1) {
		t.Fatal("Push after Close was accepted")
	}
	q2 := New[string]()
	q2.Push("left")
	q2.Close()
	if rest, closed := q2.TakeAll(nil); !closed || len(rest) != 1 {
		t.Fatalf("TakeAll after Close: %v, closed %v", rest, closed)
	}
}
