package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers and a reader at once: every write arrives whole and String never
// races with Write (the race detector checks the latter).
func TestConcurrentWriteAndRead(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}

// Take hands over each piece once.
func TestTake(t *testing.T) {
	var b Buffer
	b.Write([]byte("one"))
	if got := b.Take(); got != "one" {
		t.Fatalf("Take %q, want one", got)
	}
	b.Write([]byte("two"))
	if got := b.Take(); got != "two" {
		t.Fatalf("Take %q after the first, want two", got)
	}
	if got := b.String(); got != "" {
		t.Fatalf("String %q after Take, want empty", got)
	}
}
