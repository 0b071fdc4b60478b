package timeline

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// libraryEncode is what Encode returned before the Encoder: the library's
// own encoding, which the Encoder must match byte for byte.
func libraryEncode(t testing.TB, h *hdrhistogram.Histogram) string {
	t.Helper()
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testHistograms are shapes of content that exercise every branch of the
// counts encoding: no count, one, zero runs of every length, counts that
// take all nine bytes, the last bucket.
func testHistograms() map[string]*hdrhistogram.Histogram {
	hs := map[string]*hdrhistogram.Histogram{}
	add := func(name string, record func(h *hdrhistogram.Histogram)) {
		h := NewHistogram()
		record(h)
		hs[name] = h
	}
	add("empty", func(h *hdrhistogram.Histogram) {})
	add("lowest", func(h *hdrhistogram.Histogram) { _ = h.RecordValue(lowest) })
	add("one value", func(h *hdrhistogram.Histogram) { _ = h.RecordValue(12345) })
	add("highest", func(h *hdrhistogram.Histogram) { _ = h.RecordValue(Clamp(1 << 62)) })
	add("neighbours", func(h *hdrhistogram.Histogram) {
		for v := int64(1); v <= 5; v++ { // single zeros and no zeros between counts
			_ = h.RecordValue(2 * v)
		}
		_ = h.RecordValue(11)
	})
	add("counts above one", func(h *hdrhistogram.Histogram) {
		_ = h.RecordValues(1000, 7)
		_ = h.RecordValues(2_000_000, 300)
		_ = h.RecordValues(highest, 2)
	})
	add("large counts", func(h *hdrhistogram.Histogram) {
		_ = h.RecordValues(3, 1<<62) // zigzag makes it 2^63: nine bytes
		_ = h.RecordValues(int64(1e9), 1<<40)
		_ = h.RecordValues(int64(1e6), 127)
		_ = h.RecordValues(int64(1e7), 128)
	})
	add("an interval", func(h *hdrhistogram.Histogram) {
		rng := rand.New(rand.NewPCG(3, 4))
		for range 5000 {
			// 50 µs to 13 ms, log-uniform: a second of replay latencies
			_ = h.RecordValue(Clamp(time.Duration(50e3 * math.Exp2(8*rng.Float64()))))
		}
	})
	add("many across the range", func(h *hdrhistogram.Histogram) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 100_000 {
			// log-uniform from 1 ns to past the hour, so clamped too
			v := int64(1) << rng.IntN(43)
			_ = h.RecordValue(Clamp(time.Duration(rng.Int64N(v) + v/2)))
		}
	})
	return hs
}

// The Encoder writes what the library writes, for every shape of content,
// and what it writes decodes to the histogram it encoded.
func TestEncoderMatchesLibrary(t *testing.T) {
	t.Parallel()
	for name, h := range testHistograms() {
		var e Encoder
		got, err := e.Encode(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := libraryEncode(t, h); got != want {
			t.Errorf("%s: encoded\n%s\nthe library encodes\n%s", name, got, want)
		}
		back, err := Decode(got)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !back.Equals(h) {
			t.Errorf("%s: decodes to n=%d max=%d, want n=%d max=%d", name, back.TotalCount(), back.Max(), h.TotalCount(), h.Max())
		}
	}
}

// One Encoder used again and again carries nothing from one histogram to
// the next: a small histogram after a big one encodes as if alone, and so
// does one of another shape.
func TestEncoderReuse(t *testing.T) {
	t.Parallel()
	hs := testHistograms()
	other := hdrhistogram.New(1000, 10_000_000, 2)
	for v := int64(1000); v < 10_000_000; v = v*3/2 + 7 {
		_ = other.RecordValues(v, v%5+1)
	}
	hs["another shape"] = other
	order := []string{"many across the range", "one value", "large counts", "empty", "highest",
		"many across the range", "another shape", "neighbours", "an interval", "another shape",
		"counts above one", "lowest", "one value"}
	var e Encoder
	for i, name := range order {
		got, err := e.Encode(hs[name])
		if err != nil {
			t.Fatal(err)
		}
		if want := libraryEncode(t, hs[name]); got != want {
			t.Errorf("encode %d (%s) after %v differs from the library's", i, name, order[:i])
		}
	}
	// The package function is the same encoding.
	for name, h := range hs {
		got, err := Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		if got != libraryEncode(t, h) {
			t.Errorf("Encode(%s) differs from the library's", name)
		}
	}
}

// bytesPerCall returns the bytes f allocates, on average over n calls.
func bytesPerCall(n int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// An Encoder in use allocates the text it returns and small things, where
// the library allocates a zlib writer and more for every histogram.
// (Not parallel: the allocations counted are the whole process's.)
func TestEncoderAllocatesLittle(t *testing.T) {
	for _, name := range []string{"an interval", "many across the range"} {
		h := testHistograms()[name]
		var e Encoder
		for range 2 { // the buffers grow, the mirror is made
			if _, err := e.Encode(h); err != nil {
				t.Fatal(err)
			}
		}
		bound := uint64(len(libraryEncode(t, h)) + 32<<10)
		ours := bytesPerCall(20, func() { _, _ = e.Encode(h) })
		library := bytesPerCall(20, func() { _ = libraryEncode(t, h) })
		t.Logf("%s: bytes per encode: Encoder %d, library %d, bound %d", name, ours, library, bound)
		if ours > bound {
			t.Errorf("%s: the Encoder allocates %d bytes per histogram, want at most %d", name, ours, bound)
		}
		if library <= bound {
			t.Errorf("%s: the library allocates %d bytes per histogram, within the bound %d: the test proves nothing", name, library, bound)
		}
	}
}

// BenchmarkEncode compares the library's encoding with the Encoder's, on
// a histogram of one interval and on one filled across its whole range.
func BenchmarkEncode(b *testing.B) {
	hs := testHistograms()
	for _, name := range []string{"an interval", "many across the range"} {
		h := hs[name]
		b.Run(name+"/library", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = libraryEncode(b, h)
			}
		})
		b.Run(name+"/Encoder", func(b *testing.B) {
			b.ReportAllocs()
			var e Encoder
			for b.Loop() {
				if _, err := e.Encode(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
