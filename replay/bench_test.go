package replay

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/internal/cputime"
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

// BenchmarkScheduleLateness measures how precisely the schedule releases
// events: the loop of Run (due = T0 + n/rate, PreciseClock.SleepUntil, hand
// off to a goroutine) without a target, so only the scheduler is measured.
// It reports lateness percentiles in microseconds, and the CPU the process
// spent per second of schedule (cpu-ms/s), for the default clock (a fine
// sleep, then a short spin; at 20/s on a real-time thread where the
// process may have one) and for one that spins its last 1.5 ms, which at
// 2,000/s means spinning all the time.
//
//	go test -run '^$' -bench ScheduleLateness -benchtime 10s ./replay/
func BenchmarkScheduleLateness(b *testing.B) {
	for _, rate := range []float64{20, 2000} {
		for _, clock := range []struct {
			name string
			c    PreciseClock
		}{{"fine", PreciseClock{}}, {"spin", PreciseClock{SpinWindow: 1500 * time.Microsecond}}} {
			b.Run("rate="+strconv.FormatFloat(rate, 'g', -1, 64)+"/clock="+clock.name, func(b *testing.B) {
				ctx := context.Background()
				pacer := RatePacer{Rate: rate}
				late := NewLatency()
				var sink counter
				cpu0 := cputime.Process()
				t0 := time.Now()
				var thread pacerThread // as the replay's pacer has
				defer thread.release()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					due := t0.Add(pacer.Due(uint64(i), 0))
					thread.fit(time.Until(due))
					_ = clock.c.SleepUntil(ctx, due)
					late.Record(time.Since(due))
					sink.add()
					go sink.done()
				}
				sink.wait()
				cpu := cputime.Process() - cpu0
				s := late.Summary()
				b.ReportMetric(s.P50, "p50-µs")
				b.ReportMetric(s.P99, "p99-µs")
				b.ReportMetric(s.P999, "p99.9-µs")
				b.ReportMetric(s.Max, "max-µs")
				b.ReportMetric(float64(cpu.Milliseconds())/time.Since(t0).Seconds(), "cpu-ms/s")
			})
		}
	}
}
