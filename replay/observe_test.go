package replay

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/internal/testnet"
	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
)

// closedURL returns a metrics URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	return "http://" + testnet.DeadAddr(t) + "/metrics"
}

// A replay with --target-metrics stores sim's CPU and RSS samples in the
// run folder every interval; a target that never answers is stored as
// gaps (never as zeros) and does not fail the run.
func TestReplayScrapesTargetMetrics(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 3, Works: 4}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers = true
	cfg.Rate = 40 // 12 specs over 0.3 s: several scrapes
	cfg.LateWarn = time.Hour
	dead := closedURL(t)
	cfg.TargetMetrics = []string{"http://" + s.MetricsAddr() + "/metrics," + dead}
	cfg.Interval = 20 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil || !res.OK() {
		t.Fatalf("run: %v, %+v", err, res.Summary)
	}
	scs, err := scrape.ReadFile(filepath.Join(out, scrape.File))
	if err != nil {
		t.Fatal(err)
	}
	var ok, gaps int
	for _, sc := range scs {
		switch sc.Target {
		case dead:
			if !sc.Gap() || len(sc.Samples) > 0 {
				t.Errorf("the closed target has samples: %+v", sc)
			}
			gaps++
		default:
			if sc.Gap() {
				t.Logf("sim scrape failed: %s", sc.Error) // a loaded machine may time one out
				continue
			}
			cpu, hasCPU := sc.Value("process_cpu_seconds_total", nil)
			rss, hasRSS := sc.Value("process_resident_memory_bytes", nil)
			if !hasCPU || !hasRSS || cpu <= 0 || rss <= 0 {
				t.Errorf("sim scrape at %v: cpu %v (%v), rss %v (%v)", sc.Time, cpu, hasCPU, rss, hasRSS)
			}
			ok++
		}
	}
	if ok < 3 || gaps < 3 {
		t.Errorf("%d scrapes of sim and %d gaps of the closed target, want 3 or more of each", ok, gaps)
	}
	info := readRunInfo(t, out)
	if info.Settings["target_metrics"] == "" || info.Settings["interval"] != "20ms" {
		t.Errorf("run.json settings: %v", info.Settings)
	}
}

// Every run writes its timeline: merging the per-interval histograms gives
// exactly the whole run's histogram, for every latency; the intervals'
// counters add up to the summary's counts.
func TestReplayTimelineMergesToWholeRun(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 3, Works: 4}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers = true
	cfg.Rate = 40 // 12 specs over 0.3 s: several intervals
	cfg.LateWarn = time.Hour
	cfg.Interval = 25 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil || !res.OK() {
		t.Fatalf("run: %v, %+v", err, res.Summary)
	}
	ivs, err := timeline.ReadFile(filepath.Join(out, timeline.File))
	if err != nil {
		t.Fatal(err)
	}
	if len(ivs) < 5 {
		t.Fatalf("%d intervals, want several", len(ivs))
	}
	info := readRunInfo(t, out)
	for i, iv := range ivs {
		if iv.Index != i || (i > 0 && !iv.Start.Equal(ivs[i-1].End)) {
			t.Errorf("interval %d: %+v does not follow %+v", i, iv, ivs[i-1])
		}
	}
	if ivs[0].Start.After(info.T0) || ivs[len(ivs)-1].End.Before(info.End) {
		t.Errorf("intervals from %v to %v do not cover the run (T0 %v, end %v)", ivs[0].Start, ivs[len(ivs)-1].End, info.T0, info.End)
	}
	whole, err := timeline.ReadHistograms(filepath.Join(out, timeline.HistogramsFile))
	if err != nil {
		t.Fatal(err)
	}
	pub := HistPublish + s.SourceAddr()
	for _, name := range []string{pub, HistPublish + s.BrokerAddr(), HistSpecDelivery, HistStatusForward, HistSendLateness, HistReplyLateness} {
		w := whole[name]
		if w == nil || w.TotalCount() == 0 {
			t.Errorf("%s: no whole-run histogram (have %v)", name, timeline.Names(ivs))
			continue
		}
		merged, err := timeline.Merge(ivs, func(n string) bool { return n == name })
		if err != nil {
			t.Fatal(err)
		}
		if !merged.Equals(w) {
			t.Errorf("%s: merged intervals (n=%d, p99 %d) differ from the whole run (n=%d, p99 %d)",
				name, merged.TotalCount(), merged.ValueAtQuantile(99), w.TotalCount(), w.ValueAtQuantile(99))
		}
	}
	if whole[pub] != nil && whole[pub].TotalCount() != res.Summary.PublishLatency[s.SourceAddr()].Count {
		t.Errorf("publish histogram n=%d, summary %d", whole[pub].TotalCount(), res.Summary.PublishLatency[s.SourceAddr()].Count)
	}
	sum := map[string]float64{}
	for _, iv := range ivs {
		for k, v := range iv.Counters {
			sum[k] += v
		}
	}
	sm := res.Summary
	for k, want := range map[string]float64{"specs_sent": float64(sm.SpecsSent), "statuses_sent": float64(sm.StatusesSent),
		"deliveries": float64(sm.SpecDelivery.Count), "forwards": float64(sm.StatusForward.Count),
		"outcomes/delivered": float64(sm.Outcomes["delivered"])} {
		if sum[k] != want {
			t.Errorf("counter %s adds up to %v over the intervals, summary says %v", k, sum[k], want)
		}
	}
	if last := ivs[len(ivs)-1]; last.Gauges["inflight"] != 0 {
		t.Errorf("last interval's gauges: %v", last.Gauges)
	}
	sawAgents := false
	for _, iv := range ivs {
		sawAgents = sawAgents || iv.Gauges["agents_connected"] == 3
	}
	if !sawAgents {
		t.Errorf("no interval saw the 3 agents connected")
	}
}

func TestGridStart(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ now, want time.Time }{
		{at.Add(-2500 * time.Millisecond), at.Add(-3 * time.Second)},
		{at.Add(-3 * time.Second), at.Add(-3 * time.Second)},
		{at.Add(1500 * time.Millisecond), at.Add(time.Second)}, // a shard that starts after T0
		{at, at},
	} {
		if got := gridStart(c.now, at, time.Second); !got.Equal(c.want) {
			t.Errorf("gridStart(%v) = %v, want %v", c.now, got, c.want)
		}
	}
	now := time.Now()
	if got := gridStart(now, time.Time{}, time.Second); !got.Equal(now) {
		t.Errorf("without --start-at: %v, want now %v", got, now)
	}
}

// Two shards started at different instants with one --start-at cut their
// intervals on one grid counted from it: every interval of either starts
// a whole number of intervals from T0, and only the last is short.
func TestReplayShardTimelinesShareGrid(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	// A generated trace: replies answer specs, no recorded deliveries.
	trace := filepath.Join(t.TempDir(), "trace")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 4, 2, 100
	p.SubscribePause, p.CreateAfter = 0, 0
	if _, err := generate.Generate(context.Background(), trace, p, nil); err != nil {
		t.Fatal(err)
	}
	for c := range 4 {
		if err := s.CreateConsumer(cluster(c)); err != nil {
			t.Fatal(err)
		}
	}
	every := 30 * time.Millisecond
	startAt := time.Now().Add(700 * time.Millisecond).Truncate(time.Millisecond)
	outs := []string{filepath.Join(t.TempDir(), "shard-0"), filepath.Join(t.TempDir(), "shard-1")}
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			cfg := baseConfig(s, trace, outs[i])
			cfg.Shard = Shard{Index: i, Count: 2}
			cfg.StartAt, cfg.Rate, cfg.LateWarn, cfg.Interval = startAt, 40, time.Hour, every
			res, err := Run(context.Background(), cfg)
			if err == nil && !res.OK() {
				err = fmt.Errorf("shard %d: %v", i, res.Summary.Problems)
			}
			errs <- err
		}()
		time.Sleep(every / 3) // the second shard starts off the first one's grid
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, out := range outs {
		ivs, err := timeline.ReadFile(filepath.Join(out, timeline.File))
		if err != nil || len(ivs) < 3 {
			t.Fatalf("%s: %d intervals, %v", out, len(ivs), err)
		}
		for i, iv := range ivs {
			if off := startAt.Sub(iv.Start); off%every != 0 {
				t.Errorf("%s interval %d starts %v from T0, not on the grid of %v", out, i, off, every)
			}
			if d := iv.End.Sub(iv.Start); d > every || (i < len(ivs)-1 && d != every) {
				t.Errorf("%s interval %d lasts %v", out, i, d)
			}
		}
	}
}
