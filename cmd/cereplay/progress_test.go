package main

import (
	"strings"
	"testing"

	"github.com/cereplay/cereplay/internal/syncbuf"
)

// termBuffer is a buffer that passes for a terminal, so the progress bar
// draws into it.
type termBuffer struct{ syncbuf.Buffer }

func (t *termBuffer) IsTerminal() bool { return true }

// The bar of replay --create-consumers is driven through both phases as
// replay drives it: the consumers' bar runs to its end (and finishes),
// then the records' bar is drawn, from its first update to its last.
func TestProgressBothPhases(t *testing.T) {
	w := &termBuffer{}
	bar := newProgress(w, false, "replay")
	if bar == nil {
		t.Fatal("no bar on a terminal")
	}
	if newProgress(w, true, "replay") != nil {
		t.Fatal("a bar with --quiet")
	}
	consumers, records := bar.phaseCallback("consumers", "consumers"), bar.callback()
	consumers(1, 4)
	consumers(4, 4)
	if out := w.Take(); !strings.Contains(out, "consumers") || !strings.Contains(out, "/4, ") {
		t.Fatalf("consumers phase drew %q", out)
	}
	records(0, 29)
	if out := w.Take(); !strings.Contains(out, "replay") || !strings.Contains(out, "(0/29, ") || !strings.Contains(out, "records") {
		t.Fatalf("the replay phase drew %q; want its bar at 0/29 records", out)
	}
	bar.Finish()
}
