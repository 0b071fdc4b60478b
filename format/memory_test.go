package format

import (
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"
)

// TestReaderMemoryBounded reads a 160 MB trace of 1 MiB segments while
// dropping the records, and samples the live heap (after a GC): it must
// stay a few segments (the read-ahead), not grow with the trace.
func TestReaderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 160 MB")
	}
	c := loadCorpus(t)
	dir := t.TempDir()
	m := writeTrace(t, c, dir, 20_000, WriterOptions{SegmentSize: 1 << 20})
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Two collections empty the runtime's pools (sync.Pool keeps a victim
	// generation for one GC): encoding/json's pooled buffer of an earlier
	// test that wrote a 64 MiB manifest would otherwise count as the
	// reader's.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	for i := 0; ; i++ {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%2000 == 1000 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	limit := uint64(16 << 20) // 10% of the trace; read-ahead holds about 4 segments
	t.Logf("trace %d MB raw in %d segments; peak live heap while reading %d MB", m.RawBytes>>20, len(m.Segments), peak>>20)
	if peak > limit {
		t.Errorf("peak heap %d MB while reading a %d MB trace; want under %d MB", peak>>20, m.RawBytes>>20, limit>>20)
	}
}

// TestReaderReuseBuffers reads a trace of 64 segments twice, with and
// without ReuseBuffers, and checks every record is the same (compared
// before the next call to Next, the validity ReuseBuffers promises), and
// that reusing allocates a small part of what a plain read does: the
// decompressed segments are the garbage it exists to avoid.
func TestReaderReuseBuffers(t *testing.T) {
	c := loadCorpus(t)
	dir := t.TempDir()
	n := 8_000 // 64 segments: the first few, decoded ahead, are new either way
	m := writeTrace(t, c, dir, n, WriterOptions{SegmentSize: 1 << 20})
	read := func(reuse bool, check func(i int, rec *Record)) uint64 {
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if reuse {
			r.ReuseBuffers()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; ; i++ {
			rec, err := r.Next()
			if err == io.EOF {
				if i != n {
					t.Fatalf("reuse=%v: %d records, want %d", reuse, i, n)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			check(i, rec)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var want []Record
	plain := read(false, func(_ int, rec *Record) { want = append(want, *rec) })
	reused := read(true, func(i int, rec *Record) {
		if !equalRecords(rec, &want[i]) {
			t.Fatalf("record %d differs when reading with ReuseBuffers", i)
		}
	})
	t.Logf("%d segments, %d MB raw: allocated %d MB plain, %d MB reusing", len(m.Segments), m.RawBytes>>20, plain>>20, reused>>20)

	// Closing early returns although decoders wait for buffers the
	// caller will never give back.
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.ReuseBuffers()
	for range 300 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // let the decoders run ahead and wait
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked with decoders waiting for buffers")
	}
	// A third, not less: the buffers decoded ahead at the start are new
	// either way, and the race detector's bookkeeping allocates too.
	if reused*3 > plain {
		t.Errorf("reading with ReuseBuffers allocated %d bytes, plain %d: want under a third", reused, plain)
	}
}

// TestWriterMemoryFollowsSegmentSize writes 1 MiB segments with one
// compressor, as a replay's outcome writer does for a whole run, and
// checks what the open Writer holds: its segment buffers and an encoder
// sized to the segment, not zstd's default 8 MiB window (whose history
// alone is 16 MiB).
func TestWriterMemoryFollowsSegmentSize(t *testing.T) {
	c := loadCorpus(t)
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dir := t.TempDir()
	w, err := Create(dir, WriterOptions{SegmentSize: 1 << 20, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var r Record
	var buf []byte
	for i, raw := 0, 0; raw < 5<<20; i++ {
		buf = c.makeRecord(i, &r, buf)
		if err := w.Write(&r); err != nil {
			t.Fatalf("write record %d: %v", i, err)
		}
		raw += len(r.Data)
	}
	// The compressor has run (and sized its history) once a segment is
	// on disk.
	testwait.Until(t, "segments written", func() bool {
		segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt))
		return len(segs) >= 3
	})
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("an open Writer of 1 MiB segments holds %d KiB", held>>10)
	if limit := int64(10 << 20); held > limit {
		t.Errorf("an open Writer of 1 MiB segments holds %d MiB; want under %d MiB", held>>20, limit>>20)
	}
	runtime.KeepAlive(w)
}

func TestEncoderWindow(t *testing.T) {
	for _, c := range []struct{ segment, window int64 }{
		{1 << 10, 1 << 10}, {1000, 1 << 10}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20},
		{4 << 20, 4 << 20}, {8 << 20, 8 << 20}, {64 << 20, 8 << 20},
	} {
		if got := encoderWindow(c.segment); int64(got) != c.window {
			t.Errorf("encoderWindow(%d) = %d, want %d", c.segment, got, c.window)
		}
	}
}

// TestReaderReuseSteadyState reads a trace of 1 MiB segments with
// ReuseBuffers and measures what it allocates per segment once its
// buffers are all made: the decompressed streams and the record slices
// both come back for later segments, and a buffer is allocated with room
// for segments a little larger than the one it was made for.
func TestReaderReuseSteadyState(t *testing.T) {
	c := loadCorpus(t)
	dir := t.TempDir()
	m := writeTrace(t, c, dir, 8_000, WriterOptions{SegmentSize: 1 << 20})
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.ReuseBuffers()
	// Records per segment, to know where the steady part starts.
	starts := map[int]int{} // record index -> segment
	at := 0
	for i, s := range m.Segments {
		starts[at] = i
		at += int(s.Records)
	}
	const from, to = 16, 56
	var ms runtime.MemStats
	var before uint64
	for i := 0; ; i++ {
		if seg, ok := starts[i]; ok && (seg == from || seg == to) {
			runtime.ReadMemStats(&ms)
			if seg == from {
				before = ms.TotalAlloc
			} else {
				break
			}
		}
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	per := (ms.TotalAlloc - before) / (to - from)
	t.Logf("%d segments of about %d KiB: %d KiB allocated per segment once the buffers exist", len(m.Segments), m.RawBytes/int64(len(m.Segments))>>10, per>>10)
	if per > 64<<10 {
		t.Errorf("reading with ReuseBuffers allocated %d KiB per segment in steady state; want under 64 KiB", per>>10)
	}
}
