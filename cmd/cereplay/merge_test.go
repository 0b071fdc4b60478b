package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report/timeline"
	"github.com/cereplay/cereplay/sim"
)

// Three shard processes (this test binary, re-executed as cereplay) play
// one trace against one sim from one --start-at; merged, they account for
// the trace exactly as one unsharded run does, and the merged histograms
// are the shards' together.
func TestShardProcessesMerge(t *testing.T) {
	runIfChild()
	s, trace := simAndTrace(t, 7, 3)
	t0 := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	args := func(s *sim.Server, out string) []string {
		return []string{"replay", "--max", "--create-consumers", "--quiet", "--settle", "10s", "--interval", "100ms",
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(), "--out", out}
	}
	dirs := make([]string, 3)
	outs := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("shard-%d", i))
		a := append(args(s, dirs[i]), "--shard", fmt.Sprintf("%d/3", i), "--start-at", t0, trace)
		cmd := childCommand("TestShardProcessesMerge", a...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i])
		}
	}
	merged := filepath.Join(t.TempDir(), "merged")
	code, stdout, stderr := runCLI(t, append([]string{"merge", "--out", merged}, dirs...)...)
	if code != 0 || !strings.Contains(stdout, "merged 3 runs") {
		t.Fatalf("merge: exit %d\n%s%s", code, stdout, stderr)
	}

	fresh, err := sim.Start(context.Background(), sim.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	whole := filepath.Join(t.TempDir(), "whole")
	if code, stdout, stderr := runCLI(t, append(args(fresh, whole), trace)...); code != 0 {
		t.Fatalf("unsharded run: exit %d\n%s%s", code, stdout, stderr)
	}
	got, err := replay.ReadSummary(merged)
	if err != nil {
		t.Fatal(err)
	}
	want, err := replay.ReadSummary(whole)
	if err != nil {
		t.Fatal(err)
	}
	if !got.OK || got.Records != want.Records || !maps.Equal(got.Outcomes, want.Outcomes) ||
		got.SpecsSent != want.SpecsSent || got.StatusesSent != want.StatusesSent || len(got.ByFlow) != len(want.ByFlow) {
		t.Fatalf("merged: %+v\nunsharded: %+v", got, want)
	}
	for fl, n := range want.ByFlow {
		if !maps.Equal(got.ByFlow[fl], n) {
			t.Errorf("flow %s: merged %v, unsharded %v", fl, got.ByFlow[fl], n)
		}
	}
	hs, err := timeline.ReadHistograms(filepath.Join(merged, timeline.HistogramsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{replay.HistSpecDelivery, replay.HistStatusForward} {
		all := timeline.NewHistogram()
		for _, d := range dirs {
			shard, err := timeline.ReadHistograms(filepath.Join(d, timeline.HistogramsFile))
			if err != nil {
				t.Fatal(err)
			}
			all.Merge(shard[name])
		}
		if hs[name] == nil || !hs[name].Equals(all) || all.TotalCount() != want.SpecsSent {
			t.Errorf("%s: merged histogram differs from the shards' together (%d values, %d specs)", name, all.TotalCount(), want.SpecsSent)
		}
	}
}
