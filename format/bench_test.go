package format

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/cputime"
)

// benchRecords pre-builds distinct records (4-12 KB real wire messages
// with per-record ids) so the benchmark times the format, not the
// building of payloads. Record i of a run is pool[i%len(pool)] with its
// own offset.
func benchRecords(b *testing.B, n int) (pool []Record, raw int64) {
	c := loadCorpus(b)
	pool = make([]Record, n)
	for i := range pool {
		c.makeRecord(i, &pool[i], nil)
		raw += int64(len(AppendRecord(nil, &pool[i])))
	}
	return pool, raw
}

const benchRecordsPerOp = 32 << 10 // about 256 MiB of raw records

type benchVariant struct {
	name        string
	level       int
	segmentSize int64
}

var benchVariants = []benchVariant{
	{"level=3/seg=4MiB(default)", DefaultLevel, DefaultSegmentSize},
	{"level=1/seg=4MiB", 1, 4 << 20},
	{"level=7/seg=4MiB", 7, 4 << 20},
	{"level=3/seg=16MiB", 3, 16 << 20},
	{"level=3/seg=64MiB", 3, 64 << 20},
}

func writeBench(b *testing.B, dir string, pool []Record, v benchVariant) *Manifest {
	w, err := Create(dir, WriterOptions{Level: v.level, SegmentSize: v.segmentSize})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchRecordsPerOp {
		r := pool[i%len(pool)]
		r.Offset = time.Duration(i) * time.Millisecond
		if err := w.Write(&r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return w.Manifest()
}

// BenchmarkWrite measures Writer throughput in raw record bytes
// (MB/s column), compression and file writing included.
func BenchmarkWrite(b *testing.B) {
	pool, poolRaw := benchRecords(b, 4096)
	raw := poolRaw * benchRecordsPerOp / int64(len(pool))
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(raw)
			var m *Manifest
			cpu := cputime.Process()
			for i := 0; b.Loop(); i++ {
				m = writeBench(b, filepath.Join(b.TempDir(), fmt.Sprint(i)), pool, v)
			}
			reportCPU(b, raw, cputime.Process()-cpu)
			b.ReportMetric(float64(m.RawBytes)/float64(m.CompressedBytes), "ratio")
		})
	}
}

// BenchmarkRead measures Reader throughput in raw record bytes: every
// segment read, SHA-256 checked, decompressed and every record's CRC
// checked and decoded.
func BenchmarkRead(b *testing.B) {
	pool, poolRaw := benchRecords(b, 4096)
	raw := poolRaw * benchRecordsPerOp / int64(len(pool))
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			dir := b.TempDir()
			writeBench(b, dir, pool, v)
			b.SetBytes(raw)
			cpu := cputime.Process()
			for b.Loop() {
				r, err := Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close()
				if n != benchRecordsPerOp {
					b.Fatalf("read %d records, want %d", n, benchRecordsPerOp)
				}
			}
			reportCPU(b, raw, cputime.Process()-cpu)
		})
	}
}

// reportCPU adds MB per CPU-second: with 2 cores to itself, a program
// doing the work in parallel reaches at most twice that in MB/s. Unlike
// MB/s it holds when other processes load the machine.
func reportCPU(b *testing.B, raw int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(raw)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}
