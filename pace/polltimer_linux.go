package pace

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollTimer is a Linux timerfd read through Go's network poller. A wait
// on it parks the goroutine as a channel would: its processor and thread
// go back to the scheduler, and the poller's thread readies it when the
// kernel's high-resolution timer fires, which for a timerfd has no slack.
// A fine sleep in a system call (fineSleep) instead keeps the processor
// in the call and the goroutine on a locked thread: the runtime's monitor
// then polls every 20 µs and hands the processor to another thread, and
// the sleeper needs a thread switch to get it back. At hundreds of waits
// per second those hand-overs cost more CPU than the replay's own work.
type pollTimer struct {
	f   *os.File
	rc  syscall.RawConn
	buf [8]byte
}

func newPollTimer() (*pollTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pollTimer{f: f, rc: rc}, nil
}

// arm sets the timer to fire d from now (re-arming clears an expiry that
// was not read).
func (pt *pollTimer) arm(d time.Duration) {
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}
	// Control holds the descriptor open while it is used: an arm or fire
	// after close does nothing.
	_ = pt.rc.Control(func(fd uintptr) { _ = unix.TimerfdSettime(int(fd), 0, &its, nil) })
}

// fire makes the timer expire at once, from any goroutine.
func (pt *pollTimer) fire() { pt.arm(1) }

// wait returns when the timer has expired (at once if it has since it was
// armed).
func (pt *pollTimer) wait() { _, _ = pt.f.Read(pt.buf[:]) }

func (pt *pollTimer) close() error { return pt.f.Close() }
