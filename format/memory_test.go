package format

import (
	"io"
	"runtime"
	"testing"
	"time"
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
