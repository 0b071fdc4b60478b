package replay

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/report/scrape"
)

// closedURL returns a metrics URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/metrics"
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
