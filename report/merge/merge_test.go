package merge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report"
	"github.com/cereplay/cereplay/report/timeline"
	"github.com/cereplay/cereplay/sim"
)

func startSim(t *testing.T) *sim.Server {
	t.Helper()
	s, err := sim.Start(context.Background(), sim.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func config(s *sim.Server, trace, out string, t0 time.Time) replay.Config {
	return replay.Config{
		Trace: trace, Out: out, Max: true, CreateConsumers: true, StartAt: t0,
		SourceAddrs: []string{s.SourceAddr()}, BrokerAddrs: []string{s.BrokerAddr()}, RESTURL: s.RESTURL(),
		Settle: 10 * time.Second, Interval: 50 * time.Millisecond,
	}
}

// shardRuns plays the trace as n shards at once against one sim, from one
// start instant, and returns their run folders.
func shardRuns(t *testing.T, trace string, n int) []string {
	t.Helper()
	s := startSim(t)
	t0 := time.Now().Add(time.Second)
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("shard-%d", i))
		cfg := config(s, trace, dirs[i], t0)
		cfg.Shard = replay.Shard{Index: i, Count: n}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := replay.Run(context.Background(), cfg)
			if err == nil && !res.OK() {
				err = fmt.Errorf("shard %d: %v", i, res.Summary.Problems)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

func genTrace(t *testing.T) string {
	t.Helper()
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 7, 3, 1000
	p.SubscribePause, p.SubscribeGap, p.CreateAfter = 0, 0, 0
	dir := filepath.Join(t.TempDir(), "trace")
	if _, err := generate.Generate(context.Background(), dir, p, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Three shards of one trace against one sim, merged, account for the
// trace exactly as one unsharded run of it does, and the merged
// histograms are those of all the shards' samples together.
func TestMergeIsOneRun(t *testing.T) {
	trace := genTrace(t)
	dirs := shardRuns(t, trace, 3)
	out := filepath.Join(t.TempDir(), "merged")
	sum, err := Merge(dirs, out, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}

	whole := filepath.Join(t.TempDir(), "whole")
	res, err := replay.Run(context.Background(), config(startSim(t), trace, whole, time.Time{}))
	if err != nil || !res.OK() {
		t.Fatalf("unsharded run: %v %+v", err, res)
	}
	one := res.Summary
	if !sum.OK || sum.Records != one.Records || !maps.Equal(sum.Outcomes, one.Outcomes) ||
		sum.SpecsSent != one.SpecsSent || sum.StatusesSent != one.StatusesSent {
		t.Fatalf("merged: ok %v, %d records, outcomes %v, specs %d, statuses %d; one run: %d records, outcomes %v, specs %d, statuses %d",
			sum.OK, sum.Records, sum.Outcomes, sum.SpecsSent, sum.StatusesSent, one.Records, one.Outcomes, one.SpecsSent, one.StatusesSent)
	}
	for fl, byStatus := range one.ByFlow {
		if !maps.Equal(sum.ByFlow[fl], byStatus) {
			t.Errorf("flow %s: merged %v, one run %v", fl, sum.ByFlow[fl], byStatus)
		}
	}
	if len(sum.ByFlow) != len(one.ByFlow) {
		t.Errorf("merged flows %v, one run %v", sum.ByFlow, one.ByFlow)
	}

	// Every trace record has one outcome in the merged outcomes.
	m, _ := format.ReadManifest(trace)
	seen := map[uint64]int{}
	rd, err := format.Open(filepath.Join(out, replay.OutcomesDir))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[rec.Outcome.Index]++
	}
	for i := range uint64(m.Records) {
		if seen[i] != 1 {
			t.Errorf("record %d has %d outcomes in the merged run", i, seen[i])
		}
	}

	// The merged histograms are the histograms of every sample the shards
	// recorded, as their timelines hold them, interval by interval.
	merged, err := timeline.ReadHistograms(filepath.Join(out, timeline.HistogramsFile))
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]*hdrhistogram.Histogram{}
	for _, d := range dirs {
		ivs, err := timeline.ReadFile(filepath.Join(d, timeline.File))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range timeline.Names(ivs) {
			h, err := timeline.Merge(ivs, func(n string) bool { return n == name })
			if err != nil {
				t.Fatal(err)
			}
			if samples[name] == nil {
				samples[name] = timeline.NewHistogram()
			}
			samples[name].Merge(h)
		}
	}
	if len(merged) != len(samples) || merged[replay.HistSpecDelivery] == nil {
		t.Fatalf("merged histograms %v, samples %v", slicesKeys(merged), slicesKeys(samples))
	}
	for name, h := range samples {
		if !merged[name].Equals(h) {
			t.Errorf("histogram %s: merged %d values, the shards' samples %d", name, merged[name].TotalCount(), h.TotalCount())
		}
	}
	if got := merged[replay.HistSpecDelivery].TotalCount(); got != sum.SpecsSent || sum.SpecDelivery.Count != got {
		t.Errorf("spec_delivery holds %d values, summary %d, for %d specs sent", got, sum.SpecDelivery.Count, sum.SpecsSent)
	}
	// The merged timeline adds up to the shards' counters.
	ivs, err := timeline.ReadFile(filepath.Join(out, timeline.File))
	if err != nil {
		t.Fatal(err)
	}
	var specs float64
	for _, iv := range ivs {
		specs += iv.Counters["specs_sent"]
	}
	if int64(specs) != sum.SpecsSent {
		t.Errorf("merged timeline counts %v specs sent, the summary %d", specs, sum.SpecsSent)
	}
	var info replay.RunInfo
	readJSON(t, filepath.Join(out, replay.RunFile), &info)
	if info.Settings["merged_shards"] != "3 of 3" || info.TraceDigest != m.Digest {
		t.Errorf("merged run.json: %+v", info)
	}

	// report and compare read the merged run like any other.
	runs, err := report.LoadAll([]string{whole, out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.Build(runs, 600); err != nil {
		t.Fatalf("report of the merged run: %v", err)
	}
	if _, err := report.Compare(runs[0], runs[1], nil, false); err != nil {
		t.Fatalf("compare of the merged run with the unsharded one: %v", err)
	}
}

func slicesKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// copyRun copies a run folder and lets change edit its run.json.
func copyRun(t *testing.T, dir string, change func(*replay.RunInfo)) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(dir)+"-copy")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	var info replay.RunInfo
	readJSON(t, filepath.Join(dst, replay.RunFile), &info)
	change(&info)
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dst, replay.RunFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Mixed digests, mixed T0s, a missing shard and a shard given twice are
// refused, each with one line that names the run.
func TestMergeRefuses(t *testing.T) {
	dirs := shardRuns(t, genTrace(t), 3)
	otherTrace := copyRun(t, dirs[2], func(i *replay.RunInfo) { i.TraceDigest = "sha256:" + strings.Repeat("1", 64) })
	otherT0 := copyRun(t, dirs[2], func(i *replay.RunInfo) { i.T0 = i.T0.Add(time.Second) })
	cases := []struct {
		name string
		runs []string
		want []string
	}{
		{"mixed digests", []string{dirs[0], dirs[1], otherTrace}, []string{otherTrace, "replayed trace sha256:1111"}},
		{"mixed T0s", []string{dirs[0], dirs[1], otherT0}, []string{otherT0, "started its schedule at", "--start-at"}},
		{"missing shard", []string{dirs[0], dirs[2]}, []string{"shard 1/3 missing", dirs[0], dirs[2], "--allow-partial"}},
		{"shard twice", []string{dirs[0], dirs[1], dirs[2], copyRun(t, dirs[1], func(*replay.RunInfo) {})}, []string{"are both shard 1/3"}},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "merged")
		_, err := Merge(c.runs, out, Options{})
		if err == nil {
			t.Errorf("%s: merged", c.name)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: the refused merge left %s", c.name, out)
		}
	}
	// A run.json without settings (written by hand, or by an older
	// version) is one unsharded run: it merges alone.
	bare := copyRun(t, dirs[0], func(i *replay.RunInfo) { i.Settings = nil })
	if _, err := Merge([]string{bare}, filepath.Join(t.TempDir(), "bare"), Options{}); err != nil {
		t.Fatalf("a run without settings: %v", err)
	}
	// With --allow-partial the missing shard is merged around, and said.
	sum, err := Merge([]string{dirs[0], dirs[2]}, filepath.Join(t.TempDir(), "partial"), Options{AllowPartial: true})
	if err != nil || sum.OK || len(sum.Problems) == 0 || !strings.Contains(sum.Problems[0], "shard 1/3 missing") {
		t.Fatalf("partial merge: %v, %+v", err, sum)
	}
}
