package format

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCreateBoundsWorkers(t *testing.T) {
	for _, n := range []int{-1, MaxWorkers() + 1, 3_000_000} {
		_, err := Create(filepath.Join(t.TempDir(), "trace"), WriterOptions{Workers: n})
		if err == nil || !strings.Contains(err.Error(), "workers is outside 1..") {
			t.Errorf("Workers %d: %v, want an error giving the range", n, err)
		}
	}
	w, err := Create(filepath.Join(t.TempDir(), "trace"), WriterOptions{Workers: MaxWorkers()})
	if err != nil {
		t.Fatalf("Workers %d (MaxWorkers): %v", MaxWorkers(), err)
	}
	w.Abort()
}

// writeSegments writes records enough for several segments into a new
// Writer of dir and returns it unclosed.
func writeSegments(t *testing.T, dir string, o WriterOptions) *Writer {
	t.Helper()
	o.SegmentSize = 4 << 10
	w, err := Create(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Type: TypeEvent, Flow: FlowAgentSubscribe, Actor: "c1", Data: bytes.Repeat([]byte{7}, 1000)}
	for i := range 40 {
		r.Offset = time.Duration(i) * time.Millisecond
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// leftIn lists what is under root, relative to it.
func leftIn(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if path != root {
			left = append(left, strings.TrimPrefix(path, root+string(filepath.Separator)))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// TestDiscard: Discard removes every file the Writer made, and the folder
// when it made it, but nothing else.
func TestDiscard(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing bool // the folder is there before, with a file of its own
		opts     WriterOptions
		want     []string
	}{
		{"new folder", false, WriterOptions{}, nil},
		{"folder with other files", true, WriterOptions{}, []string{"trace", "trace/notes.txt"}},
		{"checkpoints", false, WriterOptions{Checkpoints: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "trace")
			if tc.existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w := writeSegments(t, dir, tc.opts)
			if tc.opts.Checkpoints {
				if err := w.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			if segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt+"*")); len(segs) < 2 {
				t.Fatalf("%d segment files before Discard: the test proves nothing", len(segs))
			}
			if err := w.Discard(); err != nil {
				t.Fatal(err)
			}
			if left := leftIn(t, root); !reflect.DeepEqual(left, tc.want) {
				t.Errorf("left %q, want %q", left, tc.want)
			}
			if err := w.Write(&Record{Type: TypeEvent, Flow: FlowAgentSubscribe, Actor: "c1"}); err != ErrWriteAfterClose {
				t.Errorf("Write after Discard: %v", err)
			}
		})
	}
}

func TestDiscardAfterCloseKeepsTheTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	w := writeSegments(t, dir, WriterOptions{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("Discard after Close damaged the trace: %v", err)
	}
}
