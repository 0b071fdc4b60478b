package generate

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cereplay/cereplay/format"
)

// benchParams is a tenth of the default trace: 300 clusters × 50 works.
func benchParams() Params {
	p := DefaultParams()
	p.Clusters = 300
	return p
}

// BenchmarkGenerate measures generation throughput in raw record bytes:
// "records" builds every record and drops it (the generator's own cost),
// "trace" writes the compressed trace (what `cereplay generate` does).
func BenchmarkGenerate(b *testing.B) {
	p := benchParams()
	b.Run("records", func(b *testing.B) {
		b.ReportAllocs()
		var raw int64
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
	})
	b.Run("trace", func(b *testing.B) {
		b.ReportAllocs()
		var raw int64
		for i := 0; i < b.N; i++ {
			m, err := Generate(context.Background(), filepath.Join(b.TempDir(), "trace"), p, nil)
			if err != nil {
				b.Fatal(err)
			}
			raw = m.RawBytes
		}
		b.SetBytes(raw)
	})
}
