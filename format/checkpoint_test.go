package format

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointLeavesValidTrace: after each Checkpoint the folder is a
// trace that Verify accepts, holding every record written so far, even
// with records written since (a recorder killed between checkpoints);
// Close then writes the whole trace.
func TestCheckpointLeavesValidTrace(t *testing.T) {
	c := loadCorpus(t)
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{SegmentSize: 64 << 10, Checkpoints: true, Provenance: Provenance{Tool: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	var buf []byte
	n := 0
	write := func(k int) {
		for range k {
			buf = c.makeRecord(n, &r, buf)
			if err := w.Write(&r); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	check := func(want int) {
		t.Helper()
		if err := Verify(dir); err != nil {
			t.Fatalf("Verify after %d records: %v", n, err)
		}
		rd, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		if got := rd.Manifest().Records; got != int64(want) {
			t.Fatalf("manifest holds %d records, want %d", got, want)
		}
	}
	checkpoint := func() {
		t.Helper()
		if err := w.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint()
	check(0)
	write(3)
	checkpoint()
	check(3)
	write(40) // seals by size: each seal is a checkpoint
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := len(w.Manifest().Segments)
	if segs < 2 {
		t.Fatalf("%d segments after 43 records of 64 KiB segments, want several sealed by size", segs)
	}
	check(int(w.Manifest().Records))
	w.SetProvenance(Provenance{Tool: "test", Params: map[string]string{"end": "later"}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(n)
	if got := w.Manifest().Provenance.Params["end"]; got != "later" {
		t.Errorf("provenance after SetProvenance: %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"+tmpExt))
	if len(left) > 0 {
		t.Errorf("temporary files left after Close: %v", left)
	}
}

// TestCheckpointNeedsOption: a Writer made without Checkpoints refuses
// Checkpoint and writes segments under their final names.
func TestCheckpointNeedsOption(t *testing.T) {
	w, err := Create(t.TempDir(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Checkpoint(); err == nil || !strings.Contains(err.Error(), "Checkpoints") {
		t.Fatalf("Checkpoint without the option: %v", err)
	}
}

// TestCheckpointKillLeavesOnlyTmp: segments sealed after the last
// checkpoint never appear under a segment name before a checkpoint names
// them, so Verify of a killed recorder's folder finds no extra segment.
func TestCheckpointKillLeavesOnlyTmp(t *testing.T) {
	c := loadCorpus(t)
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{SegmentSize: 64 << 10, Checkpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	var buf []byte
	for i := range 5 {
		buf = c.makeRecord(i, &r, buf)
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	// The process dies before the next checkpoint is written: a segment
	// is sealed and written, but no manifest names it.
	w.commit.stop()
	buf = c.makeRecord(5, &r, buf)
	if err := w.Write(&r); err != nil {
		t.Fatal(err)
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	w.stop()
	if _, err := os.Stat(filepath.Join(dir, SegmentName(w.nseg)+tmpExt)); err != nil {
		t.Fatalf("unsealed segment: %v", err)
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("Verify with a segment not yet checkpointed: %v", err)
	}
	w.Abort()
}
