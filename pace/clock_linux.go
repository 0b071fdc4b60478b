package pace

import (
	"context"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultSpinWindow is how long before a due time PreciseClock stops
// sleeping and starts spinning. On Linux the sleep before the window is a
// clock_nanosleep with 1 ns of timer slack, which wakes tens of
// microseconds late, so a short spin covers it and costs a few percent of a
// core at 2,000 events/s.
const DefaultSpinWindow = 100 * time.Microsecond

// kernelSleeps says PreciseClock sleeps with fineSleep all the way.
const kernelSleeps = true

// fineSleep sleeps until t (at most sleepChunk away) with the kernel's
// high-resolution timer, or until b rings (b may be nil), and reports
// whether b rang. A Go timer cannot: the runtime waits for timers with
// millisecond resolution. The thread's timer slack, 50 µs by default, is
// set to 1 ns first; the goroutine is locked to its thread so the slack
// applies to the sleep.
func fineSleep(t time.Time, b *Bell) bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	return kernelSleep(t, false, b)
}

// kernelSleep sleeps until t in the kernel, or until b rings, and reports
// whether b rang (taking the ring). Without a bell the sleep is a
// clock_nanosleep; with one it is a futex wait on the bell's word with a
// timeout, which Ring ends. Both wait on the same high-resolution timer.
// A relative timeout, recomputed after an interruption: an absolute one
// would need CLOCK_MONOTONIC, which x/sys reads with a syscall rather than
// the vDSO. hold sleeps in a raw system call: the goroutine keeps its
// processor (the scheduler does not see the sleep), so it goes on at once
// when the kernel wakes it, and the processor does no other work
// meanwhile (see holdSpan).
func kernelSleep(t time.Time, hold bool, b *Bell) bool {
	for {
		if b.take() {
			return true
		}
		d := time.Until(t)
		if d <= 0 {
			return false
		}
		ts := unix.NsecToTimespec(int64(d))
		errno := sleepCall(&ts, hold, b)
		switch errno {
		case 0, unix.EINTR, unix.EAGAIN, unix.ETIMEDOUT:
			// Slept, or woken: look at the bell and the time again.
		default:
			return false
		}
	}
}

// pureSpin is the part of a spin spent in a tight loop, never yielding:
// here all of it. The spin window is at most a millisecond (and 100 µs at
// high rates), and runtime.Gosched would put the goroutine behind every
// runnable one, which under load costs more than the whole window.
const pureSpin = maxSpinWindow

// dedicateAbove is the shortest wait (to the spin window) that PreciseClock
// waits with sleepDedicated, and that puts a Thread on a real-time
// thread: 1 ms, so rates up to about 500 sends per second get it, and
// faster schedules keep the pollTimer sleep (see Thread).
//
// Down to a millisecond the dedicated wait is both more punctual and
// cheaper. Its hold keeps a processor busy, so the runtime's monitor
// (sysmon) never finds every processor idle: with the pollTimer, each
// send found the process idle, and the system call that followed woke
// the monitor from its deep sleep into a run of 20 µs polls, which cost
// more than the sends. And the sleeping thread is the one the kernel wakes
// at the due time, at real-time priority, so the garbage collector's
// workers and a segment being decompressed on the same CPU do not hold
// the send back. Below a millisecond the hold would keep one processor
// from the rest of the replay for most of the time.
const dedicateAbove = 1 * time.Millisecond

// holdSpan is the last stretch before the spin window that sleepDedicated
// sleeps without giving up its processor.
const holdSpan = 2 * time.Millisecond

// sleepDedicated sleeps a long wait until spinFrom, where PreciseClock's
// spin takes over, or until b rings (b may be nil), and reports whether it
// rang. Runtime traces of late sends at
// --rate 20 against sim showed the pacer waiting for a CPU three ways;
// with a Thread, each is gone:
//
//   - the kernel woke the sleeping thread late, or took the CPU from it
//     while it spun, to run sim or the replayer's other threads: the
//     Thread is real-time, it runs as soon as it is runnable;
//   - the Go scheduler had no processor for the goroutine when its kernel
//     sleep ended (sysmon had handed its processor on, and every other
//     one was busy): the last holdSpan before the spin is slept with a raw
//     system call, which keeps the processor;
//   - the scheduler's monitor preempted the goroutine for running 10 ms
//     without a reschedule, during the hold or the spin, because the
//     sleeps before them count as running: a yield before the hold
//     (runtime.Gosched, with holdSpan to spare) starts that count again.
//
// The yield is made only when the last one (yielded, nil: none kept) is
// yieldEvery old or older: a goroutine that yields waits in the
// scheduler's global queue for a processor, which the collector's workers
// can hold for milliseconds, so yielding before every send of a high rate
// made the slowest sends late; once in yieldEvery keeps the monitor's
// count far from its 10 ms.
func sleepDedicated(ctx context.Context, spinFrom time.Time, yielded *lastYield, b *Bell) bool {
	if kernelSleepUntil(ctx, spinFrom.Add(-holdSpan), b) {
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	if yielded.due() {
		runtime.Gosched()
		yielded.mark()
	}
	return holdSleep(spinFrom, b)
}

// Thread puts the goroutine that releases sends on a thread of its own at
// real-time priority (where the process may: CheckRealtime) while its
// waits are long, and takes it off while they are short. Long waits are
// the rates up to about 500/s (the scale test's 20 works/s among them),
// where the pacer is idle but for each send and must run the instant it
// is due; at higher rates a
// goroutine locked to its thread pays a switch of threads at every
// reschedule (the runtime's preemption every 10 ms among them), which made
// sends milliseconds late when it was locked at every rate. Raising and
// lowering are system calls, and lowering the priority lets the kernel run
// another thread at once (just before the send, when done around each
// wait), so the switch is made rarely: on the first long wait, and back
// after shortRun short ones in a row. The zero Thread is ready to use;
// call Release when done.
type Thread struct {
	restore func() // nil while the goroutine is not locked
	short   int    // short waits in a row while locked
}

// shortRun is how many short waits in a row take a Thread off its
// thread: a burst of a --speed schedule keeps it, a high rate does not.
const shortRun = 64

// Fit locks or unlocks the calling goroutine for a wait of d.
func (p *Thread) Fit(d time.Duration) {
	switch {
	case d >= dedicateAbove:
		p.short = 0
		if p.restore == nil {
			runtime.LockOSThread()
			p.restore, _ = raisePriority() // CheckRealtime tells why not
		}
	case p.restore != nil:
		if p.short++; p.short >= shortRun {
			p.Release()
		}
	}
}

// Release puts the thread back and unlocks the goroutine.
func (p *Thread) Release() {
	if p.restore == nil {
		return
	}
	p.restore()
	runtime.UnlockOSThread()
	p.restore, p.short = nil, 0
}

// sleepCall makes kernelSleep's system call: a clock_nanosleep without b,
// a futex wait on b's word (while it is 0) with it, for the relative
// timeout ts; raw (the processor kept) with hold.
func sleepCall(ts *unix.Timespec, hold bool, b *Bell) syscall.Errno {
	var errno syscall.Errno
	switch {
	case b == nil && hold:
		_, _, errno = syscall.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	case b == nil:
		_, _, errno = syscall.Syscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	case hold:
		_, _, errno = syscall.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&b.word)), futexWait, 0, uintptr(unsafe.Pointer(ts)), 0, 0)
	default:
		_, _, errno = syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&b.word)), futexWait, 0, uintptr(unsafe.Pointer(ts)), 0, 0)
	}
	return errno
}

// holdSleep sleeps until t like fineSleep, or until b rings, but holding
// the processor (kernelSleep's hold), which is why only the last holdSpan
// of a wait is slept so. On a Thread the timer slack is the 1 ns the
// fineSleep before it set; a goroutine not locked to its thread may sleep
// here with the default 50 µs, which the spin window (1 ms for such
// waits) covers.
func holdSleep(t time.Time, b *Bell) bool { return kernelSleep(t, true, b) }

// Held reports whether the goroutine is on its real-time thread (its last
// waits were long).
func (p *Thread) Held() bool { return p.restore != nil }

// raisePriority puts the calling thread (locked by the caller) at the
// lowest real-time priority, SCHED_FIFO 1: above every ordinary thread,
// below the kernel's own. It returns what puts the thread back as it was,
// and why it could not raise it (without CAP_SYS_NICE or an rtprio
// limit), in which case nothing changed. A thread that is real-time
// already is left alone.
func raisePriority() (restore func(), err error) {
	nothing := func() {}
	old, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return nothing, err
	}
	if old.Policy == unix.SCHED_FIFO || old.Policy == unix.SCHED_RR {
		return nothing, nil
	}
	rt := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}
	if err := unix.SchedSetAttr(0, &rt, 0); err != nil {
		return nothing, err
	}
	return func() {
		// Lowering a thread's own priority needs no permission.
		_ = unix.SchedSetAttr(0, old, 0)
	}, nil
}

// CheckRealtime reports whether a Thread's long waits run at real-time
// priority: nil if the process may raise a thread to SCHED_FIFO, else why
// not. Without it they still run on a thread of
// their own, at ordinary priority, and sends at low rates are late
// whenever sim or another process has the CPUs. Grant it with
// `sudo setcap cap_sys_nice+ep cereplay` or an rtprio limit.
func CheckRealtime() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := raisePriority()
	restore()
	return err
}
