package format

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoundTrip writes 100,000 records of 4-12 KB real wire messages and
// reads them back: every field equal, in order, and the manifest's
// counts right.
func TestRoundTrip(t *testing.T) {
	c := loadCorpus(t)
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	dir := t.TempDir()
	m := writeTrace(t, c, dir, n, WriterOptions{Provenance: Provenance{Tool: "test", Seed: 42}})
	if m.Records != int64(n) || len(m.Segments) < 2 {
		t.Fatalf("manifest: %d records in %d segments, want %d in several", m.Records, len(m.Segments), n)
	}
	if m.CountsByFlow["source>server"] != int64(n/4) || m.CountsByType[eventTypes[1]] != int64(3*n/4) {
		t.Errorf("counts: flow %v type %v", m.CountsByFlow, m.CountsByType)
	}
	if len(m.Consumers) != min(300, n/100) || len(m.Sources) != 1 || m.Sources[0] != "maestro-source" {
		t.Errorf("consumers %d, sources %v", len(m.Consumers), m.Sources)
	}

	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Manifest().Digest != m.Digest {
		t.Fatalf("digest read %s, written %s", r.Manifest().Digest, m.Digest)
	}
	var want Record
	var buf []byte
	var prev *Record
	for i := 0; ; i++ {
		got, err := r.Next()
		if err == io.EOF {
			if i != n {
				t.Fatalf("EOF after %d records, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		buf = c.makeRecord(i, &want, buf)
		if !equalRecords(got, &want) {
			t.Fatalf("record %d differs:\n got %+v\nwant %+v", i, got.Offset, want.Offset)
		}
		if prev != nil && prev.Offset != want.Offset-50e6 {
			t.Fatalf("record %d: previous record changed after Next", i)
		}
		prev = got
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after EOF: %v", err)
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestWorkersDeterministic: the same records give byte-identical files
// whatever the number of compression workers.
func TestWorkersDeterministic(t *testing.T) {
	c := loadCorpus(t)
	const n = 3000
	var dirs []string
	for _, workers := range []int{1, 8} {
		dir := filepath.Join(t.TempDir(), "trace")
		writeTrace(t, c, dir, n, WriterOptions{Workers: workers, SegmentSize: 1 << 20, Provenance: Provenance{Tool: "test"}})
		dirs = append(dirs, dir)
	}
	a, _ := os.ReadDir(dirs[0])
	b, _ := os.ReadDir(dirs[1])
	if len(a) != len(b) || len(a) < 10 {
		t.Fatalf("%d files with 1 worker, %d with 8; want the same, at least 10", len(a), len(b))
	}
	for i := range a {
		x, err := os.ReadFile(filepath.Join(dirs[0], a[i].Name()))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(dirs[1], b[i].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if a[i].Name() != b[i].Name() || !bytes.Equal(x, y) {
			t.Errorf("%s (1 worker) differs from %s (8 workers)", a[i].Name(), b[i].Name())
		}
	}
}

func TestEmptyTrace(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next on empty trace: %v, want EOF", err)
	}
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok := &Record{Type: TypeEvent, Offset: 10, Flow: FlowAgentSubscribe, Actor: "c1"}
	if err := w.Write(ok); err != nil {
		t.Fatal(err)
	}
	early := *ok
	early.Offset = 9
	if err := w.Write(&early); !errors.Is(err, ErrOrder) {
		t.Errorf("out-of-order Write: %v, want ErrOrder", err)
	}
	bad := *ok
	bad.Flow = 0
	if err := w.Write(&bad); err == nil {
		t.Error("Write of flow 0 event succeeded")
	}
	if err := w.Write(ok); err != nil { // neither error is sticky
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ok); !errors.Is(err, ErrWriteAfterClose) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Create(dir, WriterOptions{}); err == nil {
		t.Error("Create over an existing trace succeeded")
	}
}

// TestCloseMidStream: closing a Reader before the end stops its
// read-ahead, keeps returned records valid and makes Next fail.
func TestCloseMidStream(t *testing.T) {
	src := pristineTrace(t)
	r, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(first.Data)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v, want an error", err)
	}
	if !bytes.Equal(first.Data, data) {
		t.Error("a record returned before Close changed")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestAbortLeavesUnfinishedTrace: an aborted Writer writes no manifest,
// and readers say the trace was never finished.
func TestAbortLeavesUnfinishedTrace(t *testing.T) {
	c := loadCorpus(t)
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	var buf []byte
	for i := range 50 {
		buf = c.makeRecord(i, &r, buf)
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	if err := w.Write(&r); !errors.Is(err, ErrWriteAfterClose) {
		t.Errorf("Write after Abort: %v", err)
	}
	_, err = Open(dir)
	if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "never finished") {
		t.Errorf("Open of an aborted trace: %v", err)
	}
	if _, err := Create(dir, WriterOptions{}); err == nil {
		t.Error("Create over leftover segments succeeded")
	}
}

// TestWriterFileErrorIsSticky: when a segment cannot be written (here the
// folder vanishes), Write or Close reports it, later calls repeat it, and
// no manifest is written.
func TestWriterFileErrorIsSticky(t *testing.T) {
	c := loadCorpus(t)
	dir := filepath.Join(t.TempDir(), "trace")
	w, err := Create(dir, WriterOptions{SegmentSize: 64 << 10, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	var r Record
	var buf []byte
	var werr error
	for i := 0; i < 200 && werr == nil; i++ {
		buf = c.makeRecord(i, &r, buf)
		werr = w.Write(&r)
	}
	if werr == nil {
		t.Fatal("200 records of 64 KiB segments into a removed folder: no Write failed")
	}
	if err := w.Write(&r); err != werr {
		t.Errorf("Write after a failure: %v, want the same error %v", err, werr)
	}
	cerr := w.Close()
	t.Logf("Write: %v; Close: %v", werr, cerr)
	if cerr == nil {
		t.Error("Close after a failed Write returned nil")
	}
	if w.Manifest() != nil {
		t.Error("a failed Writer has a manifest")
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		t.Error("manifest written after a failure")
	}
}
