package replay

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/maestro"
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

// BenchmarkRewrite measures the send-time rewrite of one event: a status
// with a new resource version and sequence id (every status of a run), and
// a spec and a status under a run id.
//
//	go test -run '^$' -bench Rewrite ./replay/
func BenchmarkRewrite(b *testing.B) {
	const rid = "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"
	for _, bc := range []struct {
		name, golden, runID string
		hasVer              bool
		seq                 string
	}{
		{"status", "03rb-agent-status-update_request-realistic-available", "", true, "2126483703738667999"},
		{"status-run-id", "03rb-agent-status-update_request-realistic-available", "run-2", true, "2126483703738667999"},
		{"spec-run-id", "01-source-spec-create_request", "run-2", false, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in, err := maestro.PublishRequestEvent(golden(b, bc.golden))
			if err != nil {
				b.Fatal(err)
			}
			m := newRemapper(bc.runID)
			dst := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = m.event(dst[:0], in, rid, m.id(rid), 7, bc.hasVer, bc.seq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
