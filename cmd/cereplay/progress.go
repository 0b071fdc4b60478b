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
// is not set, cleared when finished. A command of several phases (replay:
// consumers, then records) gets one callback per phase: each phase draws
// a bar of its own, since a bar that reached its end is finished for good.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	pb    *progressbar.ProgressBar
	phase string // the label of the bar pb draws
}

// newProgress returns a bar writing to w, or nil (no bar) when quiet or
// when w is not a terminal. A nil *progress is safe to use.
func newProgress(w io.Writer, quiet bool, label string) *progress {
	if quiet || !isTerminal(w) {
		return nil
	}
	return &progress{w: w, label: label}
}

// isTerminal says whether w is a terminal: an *os.File on one, or a writer
// that says it is one (the tests' stand-in for a terminal).
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Update sets the bar to done records out of total; total may grow as work
// is found.
func (p *progress) Update(done, total int64) { p.update(p.label, "records", done, total) }

// update sets the bar of phase label to done out of total units; the first
// update of another phase finishes the bar before it and starts a new one.
func (p *progress) update(label, unit string, done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pb != nil && p.phase != label {
		_ = p.pb.Finish()
		p.pb = nil
	}
	if p.pb == nil {
		p.phase = label
		p.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
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

// phaseCallback is callback for another phase of the command, counting
// unit: its bar is labelled label.
func (p *progress) phaseCallback(label, unit string) func(done, total int64) {
	if p == nil {
		return nil
	}
	return func(done, total int64) { p.update(label, unit, done, total) }
}
