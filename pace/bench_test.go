package pace

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/cputime"
)

// BenchmarkScheduleLateness measures how precisely a schedule is released:
// the loop of a replay's pacer (due = T0 + n/rate, a Thread, SleepUntil,
// hand off to a goroutine) without a target, so only the scheduler is
// measured. It reports lateness percentiles in microseconds, and the CPU
// the process spent per second of schedule (cpu-ms/s), for the default
// clock (a sleep, then a spin as long as nine in ten recent wake-ups needed; at
// 20/s on a real-time thread where the process may have one), for one
// that spins a fixed 100 µs before every send (the zero PreciseClock), and
// for one that spins its last 1.5 ms, which at 2,000/s means spinning all
// the time.
//
//	go test -run '^$' -bench ScheduleLateness -benchtime 10s ./pace/
func BenchmarkScheduleLateness(b *testing.B) {
	for _, rate := range []float64{20, 2000} {
		for _, clock := range []struct {
			name string
			c    PreciseClock
		}{{"adapted", NewPreciseClock(0)}, {"fixed", PreciseClock{}}, {"spin", PreciseClock{SpinWindow: 1500 * time.Microsecond}}} {
			b.Run("rate="+strconv.FormatFloat(rate, 'g', -1, 64)+"/clock="+clock.name, func(b *testing.B) {
				ctx := context.Background()
				pacer := RatePacer{Rate: rate}
				late := make([]time.Duration, 0, b.N)
				var sends sync.WaitGroup
				cpu0 := cputime.Process()
				t0 := time.Now()
				var thread Thread // as a replay's pacer goroutine has
				defer thread.Release()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					due := t0.Add(pacer.Due(uint64(i), 0))
					thread.Fit(time.Until(due))
					_ = clock.c.SleepUntil(ctx, due)
					late = append(late, time.Since(due))
					sends.Add(1)
					go sends.Done()
				}
				sends.Wait()
				cpu := cputime.Process() - cpu0
				slices.Sort(late)
				at := func(q float64) float64 {
					return float64(late[min(len(late)-1, int(q*float64(len(late))))]) / 1e3
				}
				b.ReportMetric(at(0.5), "p50-µs")
				b.ReportMetric(at(0.99), "p99-µs")
				b.ReportMetric(at(0.999), "p99.9-µs")
				b.ReportMetric(float64(late[len(late)-1])/1e3, "max-µs")
				b.ReportMetric(float64(cpu.Milliseconds())/time.Since(t0).Seconds(), "cpu-ms/s")
			})
		}
	}
}
