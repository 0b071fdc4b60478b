package replay

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
)

// BenchmarkReplayMax plays a generated guestbook trace (100 clusters × 20
// works, 4,000 events) at --max against the embedded sim; bytes are the
// trace's raw record bytes, so MB/s is replay throughput.
//
//	go test -run '^$' -bench ReplayMax -benchtime 3x ./replay/
func BenchmarkReplayMax(b *testing.B) {
	trace := filepath.Join(b.TempDir(), "trace")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 100, 20, 1000
	p.SubscribePause, p.CreateAfter = 0, 0
	man, err := generate.Generate(context.Background(), trace, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := startSim(b, simConfig())
	for _, c := range man.Consumers {
		if err := s.CreateConsumer(c); err != nil {
			b.Fatal(err)
		}
	}
	for _, inflight := range []int{64, 256} {
		b.Run(format.FlowSourceToServer.String()+"/inflight="+itoa(inflight), func(b *testing.B) {
			b.SetBytes(man.RawBytes)
			for i := 0; i < b.N; i++ {
				cfg := baseConfig(s, trace, filepath.Join(b.TempDir(), "run"))
				cfg.Max, cfg.MaxInflight, cfg.RunID = true, inflight, time.Now().Format(time.RFC3339Nano)
				res, err := Run(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if !res.OK() {
					b.Fatalf("run not OK: %v", res.Summary.Problems)
				}
				b.ReportMetric(float64(res.Summary.SpecsSent+res.Summary.StatusesSent)/res.Summary.SendSeconds, "events/s")
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
