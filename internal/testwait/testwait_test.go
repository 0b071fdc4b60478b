package testwait

import (
	"sync/atomic"
	"testing"
)

// Until returns as soon as the condition holds, having checked it until then.
func TestUntilReturnsWhenTrue(t *testing.T) {
	var calls atomic.Int32
	Until(t, "the third check", func() bool { return calls.Add(1) >= 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
