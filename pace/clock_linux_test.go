package pace

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A Thread goes real-time on a long wait (where the process may),
// stays so through a burst of short waits, and puts the thread back as it
// was after shortRun short ones in a row, or when released.
func TestPacerThread(t *testing.T) {
	// Locked here too, so the thread under test stays this one after the
	// Thread unlocks.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	policy := func() uint32 {
		a, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return a.Policy
	}
	before := policy()
	raised := uint32(unix.SCHED_FIFO)
	if err := CheckRealtime(); err != nil {
		t.Logf("no real-time priority here (%v): checking that nothing changes", err)
		raised = before
	}
	var p Thread
	p.Fit(dedicateAbove)
	if got := policy(); got != raised {
		t.Fatalf("after a long wait: policy %d, want %d", got, raised)
	}
	for i := 0; i < shortRun-1; i++ {
		p.Fit(dedicateAbove - time.Microsecond)
	}
	if got := policy(); got != raised {
		t.Fatalf("after %d short waits: policy %d, want %d", shortRun-1, got, raised)
	}
	p.Fit(0)
	if got := policy(); got != before {
		t.Fatalf("after %d short waits: policy %d, want %d as before", shortRun, got, before)
	}
	p.Fit(time.Second)
	p.Release()
	p.Release()
	if got := policy(); got != before {
		t.Fatalf("after release: policy %d, want %d", got, before)
	}
}

// A Ring wakes a kernel sleep on the bell itself, the held one and the
// one that lets the processor go, not only at the next look after a
// chunk of sleep: each sleeps an hour here unless the ring's futex wake
// reaches it.
func TestKernelSleepWakesOnRing(t *testing.T) {
	t.Parallel()
	for _, hold := range []bool{true, false} {
		var b Bell
		started, rung := make(chan struct{}), make(chan bool, 1)
		go func() {
			close(started)
			if hold {
				rung <- holdSleep(time.Now().Add(time.Hour), &b)
			} else {
				rung <- fineSleep(time.Now().Add(time.Hour), &b)
			}
		}()
		<-started
		b.Ring()
		select {
		case r := <-rung:
			if !r {
				t.Fatalf("hold %v: the sleep ended without the ring", hold)
			}
		case <-time.After(time.Minute):
			t.Fatalf("hold %v: the ring did not wake the sleep", hold)
		}
	}
}
