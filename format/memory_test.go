package format

import (
	"io"
	"runtime"
	"testing"
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
