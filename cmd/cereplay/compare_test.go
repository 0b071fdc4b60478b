package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report"
	"github.com/cereplay/cereplay/sim"
)

// report and compare end to end on real runs: two runs of the same build
// against sim compare OK (exit 0) under Maestro's SLO thresholds; a run
// against a sim made slower than the SLO on purpose (--publish-latency
// 600ms against the 500 ms bound) breaks it (exit 1); bad input is exit 2.
func TestReportAndCompareCommands(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	trace := filepath.Join(root, "trace")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 3, 2, 100
	p.SubscribePause, p.CreateAfter = 0, 0
	if _, err := generate.Generate(context.Background(), trace, p, nil); err != nil {
		t.Fatal(err)
	}
	fast := startTestSim(t, 0)
	slow := startTestSim(t, 600*time.Millisecond)
	play := func(s *sim.Server, name string, create bool) string {
		out := filepath.Join(root, name)
		args := []string{"replay", "--max", "--quiet", "--settle", "10s", "--run-id", name, "--interval", "100ms",
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(),
			"--target-metrics", "http://" + s.MetricsAddr() + "/metrics", "--out", out, trace}
		if create {
			args = append(args, "--create-consumers")
		}
		if code, stdout, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("replay %s: exit %d\n%s\n%s", name, code, stdout, stderr)
		}
		return out
	}
	base, same, slowed := play(fast, "base", true), play(fast, "same", false), play(slow, "slowed", true)

	code, stdout, stderr := runCLI(t, "compare", base, same)
	if code != 0 || !strings.Contains(stdout, "holds  publish.p99<=500ms") || !strings.Contains(stdout, "compare OK: 3 thresholds hold") {
		t.Errorf("same build: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "compare", base, slowed)
	if code != 1 || !strings.Contains(stdout, "BROKEN publish.p99<=500ms") || !strings.Contains(stderr, "publish.p99<=500ms") {
		t.Errorf("slowed: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// An absolute bound the slowed run breaks whatever the base run's
	// latency: a busy machine made a change bound (+1000%) hold.
	code, stdout, _ = runCLI(t, "compare", "--json", "--thresholds-file", "none", "--threshold", "publish.p50<=550ms", base, slowed)
	var cmp report.Comparison
	if err := json.Unmarshal([]byte(stdout), &cmp); code != 1 || err != nil || cmp.OK || len(cmp.Verdicts) != 1 {
		t.Errorf("slowed, json: exit %d, %v\n%s", code, err, stdout)
	}

	// A copy of a run, said to be of another trace.
	other := filepath.Join(root, "other")
	if err := os.CopyFS(other, os.DirFS(same)); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(filepath.Join(other, replay.RunFile))
	if err != nil {
		t.Fatal(err)
	}
	var ri replay.RunInfo
	_ = json.Unmarshal(info, &ri)
	info = []byte(strings.ReplaceAll(string(info), ri.TraceDigest, "sha256:0000"))
	if err := os.WriteFile(filepath.Join(other, replay.RunFile), info, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"one run":          {"compare", base},
		"not a run":        {"compare", base, root},
		"bad threshold":    {"compare", "--threshold", "publish.p99 < 5", base, same},
		"unknown metric":   {"compare", "--threshold", "latency.p99<=5ms", base, same},
		"no file":          {"compare", "--thresholds-file", filepath.Join(root, "nope"), base, same},
		"different traces": {"compare", base, other},
	} {
		if code, _, stderr := runCLI(t, args...); code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "compare", "--allow-different-traces", base, other); code != 0 {
		t.Errorf("--allow-different-traces: exit %d, %s", code, stderr)
	}

	page := filepath.Join(root, "report.html")
	if code, _, stderr := runCLI(t, "report", base, slowed, "-o", page); code != 0 {
		t.Fatalf("report: exit %d, %s", code, stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "slowed") {
		t.Errorf("report page: %d bytes, %v", len(b), err)
	}
	code, stdout, stderr = runCLI(t, "report", "--format", "json", "-o", "-", base)
	var rep report.Report
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || len(rep.Runs) != 1 || len(rep.Charts) < 8 {
		t.Errorf("report json: exit %d, %v, %s", code, err, stderr)
	}
	for name, want := range map[string]struct {
		args []string
		code int
	}{
		"no run":     {[]string{"report"}, 2},
		"bad format": {[]string{"report", "--format", "pdf", base}, 2},
		"not a run":  {[]string{"report", "-o", "-", root}, 1},
	} {
		if code, _, stderr := runCLI(t, want.args...); code != want.code {
			t.Errorf("%s: exit %d, want %d (%s)", name, code, want.code, stderr)
		}
	}
}

func startTestSim(t *testing.T, latency time.Duration) *sim.Server {
	t.Helper()
	c := sim.LoopbackConfig()
	c.PublishLatency = latency
	s, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
