//go:build !linux

package pace

import (
	"sync"
	"time"
)

// pollTimer is a Go timer and a channel where there is no timerfd: as
// coarse as the Go timer, which DefaultSpinWindow covers here.
type pollTimer struct {
	mu    sync.Mutex
	timer *time.Timer
	fired chan struct{}
}

func newPollTimer() (*pollTimer, error) {
	pt := &pollTimer{fired: make(chan struct{}, 1)}
	pt.timer = time.AfterFunc(time.Hour, pt.fire)
	pt.timer.Stop()
	return pt, nil
}

// arm sets the timer to fire d from now, dropping an expiry not waited for.
func (pt *pollTimer) arm(d time.Duration) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.timer.Stop()
	select {
	case <-pt.fired:
	default:
	}
	pt.timer.Reset(d)
}

// fire makes the timer expire at once, from any goroutine.
func (pt *pollTimer) fire() {
	select {
	case pt.fired <- struct{}{}:
	default:
	}
}

// wait returns when the timer has expired.
func (pt *pollTimer) wait() { <-pt.fired }

func (pt *pollTimer) close() error {
	pt.timer.Stop()
	return nil
}
