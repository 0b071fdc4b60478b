package generate

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/cputime"
)

// benchParams is a tenth of the default trace: 300 clusters × 50 works.
func benchParams() Params {
	p := DefaultParams()
	p.Clusters = 300
	return p
}

// BenchmarkGenerate measures generation throughput in raw record bytes:
// "records" builds every record and drops it (the generator's own cost),
// "trace" writes the compressed trace (what `cereplay generate` does) at
// zstd level 1 (generate's default) and 3 (the format's); "lifecycle"
// is the same with one update and one delete per work.
func BenchmarkGenerate(b *testing.B) {
	p := benchParams()
	lifecycle := p
	lifecycle.UpdatesPerWork, lifecycle.Delete = 1, true
	b.Run("records", func(b *testing.B) { benchRecords(b, p) })
	b.Run("records/lifecycle", func(b *testing.B) { benchRecords(b, lifecycle) })
	for _, level := range []int{1, 3} {
		b.Run(fmt.Sprintf("trace/level=%d", level), func(b *testing.B) {
			p := p
			p.Level = level
			benchTrace(b, p)
		})
	}
	b.Run("trace/lifecycle", func(b *testing.B) { benchTrace(b, lifecycle) })
}

// benchRecords builds every record of p and drops it.
func benchRecords(b *testing.B, p Params) {
	b.ReportAllocs()
	var raw int64
	cpu := cputime.Process()
	for i := 0; i < b.N; i++ {
		g, err := newGenerator(p)
		if err != nil {
			b.Fatal(err)
		}
		raw = 0
		err = g.run(context.Background(), func(r *format.Record) error {
			raw += int64(len(r.Data))
			return nil
		}, func(int64, int64) {})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(raw)
	reportCPU(b, raw, cputime.Process()-cpu)
}

// benchTrace writes the compressed trace of p.
func benchTrace(b *testing.B, p Params) {
	b.ReportAllocs()
	var raw int64
	cpu := cputime.Process()
	for i := 0; i < b.N; i++ {
		m, err := Generate(context.Background(), filepath.Join(b.TempDir(), "trace"), p, nil)
		if err != nil {
			b.Fatal(err)
		}
		raw = m.RawBytes
	}
	b.SetBytes(raw)
	reportCPU(b, raw, cputime.Process()-cpu)
}

// reportCPU adds MB of records per CPU-second of the whole process (all
// goroutines): steadier than wall time on a shared machine, and what the
// two cores bound.
func reportCPU(b *testing.B, raw int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(raw)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}
