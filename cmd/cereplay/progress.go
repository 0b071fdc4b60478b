package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is the terminal progress bar of generate and replay: records
// done with rate and ETA, drawn only when stderr is a terminal and --quiet
// is not set, cleared when finished.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	pb    *progressbar.ProgressBar
}

// newProgress returns a bar writing to w, or nil (no bar) when quiet or
// when w is not a terminal. A nil *progress is safe to use.
func newProgress(w io.Writer, quiet bool, label string) *progress {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w, label: label}
}

// Update sets the bar to done out of total; total may grow as work is found.
func (p *progress) Update(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pb == nil {
		p.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("records"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(150*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	if total != p.pb.GetMax64() {
		p.pb.ChangeMax64(total)
	}
	_ = p.pb.Set64(done)
}

// Finish clears the bar.
func (p *progress) Finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pb != nil {
		_ = p.pb.Finish()
	}
}

// callback returns Update as a function value, or nil when there is no
// bar, so libraries can skip progress work entirely.
func (p *progress) callback() func(done, total int64) {
	if p == nil {
		return nil
	}
	return p.Update
}
