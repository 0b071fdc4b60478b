package pace

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bell ends a PreciseClock.Await early: a goroutine that has just made
// something due sooner than the waiter sleeps for rings it, and the waiter
// looks again. A ring while nobody waits is kept for the next Await, which
// then returns at once; rings before it is taken count as one. The zero
// Bell is ready to use; it must not be copied once used.
//
// Here it is a futex: Await's kernel sleeps wait on its word with their
// timeout, so a ring costs one system call and wakes the sleeping thread
// directly, with no trip through Go's scheduler or network poller.
type Bell struct {
	word atomic.Uint32 // 1 while a ring waits to be taken
}

// Ring wakes the goroutine in Await on b, or the next one to call it.
func (b *Bell) Ring() {
	if b.word.Swap(1) == 0 {
		_, _, _ = syscall.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&b.word)),
			futexWake, 1, 0, 0, 0)
	}
}

// The futex operations Bell uses (linux/futex.h; x/sys/unix has no names
// for them), on a word private to the process.
const (
	futexPrivate = 128
	futexWait    = 0 | futexPrivate
	futexWake    = 1 | futexPrivate
)

// take reports whether b (nil: no bell) has rung since the last take.
func (b *Bell) take() bool {
	return b != nil && b.word.Load() != 0 && b.word.Swap(0) != 0
}
