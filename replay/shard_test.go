package replay

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
)

func TestParseShard(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"x", "1/1", "2/2", "-1/3", "0/0", "3"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
	sh, err := ParseShard("1/3")
	if err != nil || sh != (Shard{Index: 1, Count: 3}) || sh.String() != "1/3" {
		t.Fatalf("ParseShard(1/3) = %+v, %v", sh, err)
	}
	if none, _ := ParseShard(""); !none.Owns("anything") || none.String() != "" {
		t.Fatalf("empty shard must own everything")
	}
}

// Every cluster belongs to exactly one shard, and shards are roughly even.
func TestShardOwnsPartition(t *testing.T) {
	t.Parallel()
	const n, clusters = 4, 3000
	counts := make([]int, n)
	for c := 0; c < clusters; c++ {
		name := fmt.Sprintf("maestro-cluster-%d", c+1)
		owners := 0
		for i := 0; i < n; i++ {
			if (Shard{Index: i, Count: n}).Owns(name) {
				owners++
				counts[i]++
			}
		}
		if owners != 1 {
			t.Fatalf("%s has %d owners", name, owners)
		}
	}
	for i, c := range counts {
		if c < clusters/n*8/10 || c > clusters/n*12/10 {
			t.Errorf("shard %d has %d of %d clusters", i, c, clusters)
		}
	}
}

// The in-flight bound defaults to a small one at --max, where it sets the
// pace, and to a large one when the schedule does (an open model).
func TestDefaultInflight(t *testing.T) {
	t.Parallel()
	base := Config{Trace: "t", SourceAddrs: []string{"a"}, BrokerAddrs: []string{"b"}}
	for _, tc := range []struct {
		max  bool
		rate float64
		set  int
		want int
	}{
		{max: true, want: DefaultMaxInflight},
		{rate: 2000, want: DefaultPacedInflight},
		{want: DefaultPacedInflight},
		{max: true, set: 7, want: 7},
		{rate: 20, set: 7, want: 7},
	} {
		c := base
		c.Max, c.Rate, c.MaxInflight = tc.max, tc.rate, tc.set
		got, err := c.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if got.MaxInflight != tc.want {
			t.Errorf("max=%v rate=%v set=%d: MaxInflight %d, want %d", tc.max, tc.rate, tc.set, got.MaxInflight, tc.want)
		}
	}
}

// traceLoads weighs the clusters of the trace in dir.
func traceLoads(t *testing.T, dir string) []ClusterLoad {
	t.Helper()
	rd, err := format.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	loads, err := TraceLoads(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return loads
}

// The plan keeps shards within 1 % of each other in clusters, events and
// bytes on a generated trace of the default shape (3,000 clusters, the
// same works for each), for any shard count a run would use.
func TestPlanShardsWithinOnePercent(t *testing.T) {
	t.Parallel()
	p := generate.DefaultParams()
	p.WorksPerCluster = 2
	if testing.Short() {
		p.WorksPerCluster = 1
	}
	loads := traceLoads(t, generateTrace(t, p))
	if len(loads) != p.Clusters {
		t.Fatalf("%d clusters weighed, the trace has %d", len(loads), p.Clusters)
	}
	var events int64
	for _, l := range loads {
		events += l.Events
	}
	// Each cluster: its subscribe, and each work's spec, delivery, status and forward.
	if want := int64(p.Clusters * (1 + 4*p.WorksPerCluster)); events < int64(p.Clusters*(1+2*p.WorksPerCluster)) || events > want {
		t.Fatalf("%d events weighed for %d clusters of %d works", events, p.Clusters, p.WorksPerCluster)
	}
	for _, n := range []int{2, 3, 4, 6, 7, 8, 10, 16} {
		c, e, b := PlanShards(loads, n).Spread()
		hc, he, hb := HashPlan(loads, n).Spread()
		t.Logf("%2d shards: planned %.2f%% clusters, %.2f%% events, %.2f%% bytes; by name hash %.1f%%, %.1f%%, %.1f%%",
			n, 100*c, 100*e, 100*b, 100*hc, 100*he, 100*hb)
		if c > 0.01 || e > 0.01 || b > 0.01 {
			t.Errorf("%d shards: spread %.2f%% clusters, %.2f%% events, %.2f%% bytes; want each within 1%%", n, 100*c, 100*e, 100*b)
		}
	}
}

// The plan is a function of the loads, not of their order; every cluster
// has one owner; a heavy cluster is balanced by many light ones.
func TestPlanShards(t *testing.T) {
	t.Parallel()
	loads := []ClusterLoad{{"heavy", 1000, 1 << 20}}
	for i := range 100 {
		loads = append(loads, ClusterLoad{fmt.Sprintf("light-%03d", i), 10, 1 << 10})
	}
	plan := PlanShards(loads, 2)
	if plan.Shards[0].Events != 1000 || plan.Shards[1].Events != 1000 {
		t.Fatalf("shards carry %+v, want 1000 events each", plan.Shards)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(loads)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if again := PlanShards(shuffled, 2); !maps.Equal(again.owner, plan.owner) {
		t.Fatal("the same loads in another order make another plan")
	}
	shards := make([]Shard, 2)
	for i := range shards {
		var err error
		if shards[i], err = (Shard{Index: i, Count: 2}).WithPlan(plan); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range append(loads, ClusterLoad{Cluster: "not-in-the-plan"}) {
		if owners := btoi(shards[0].Owns(l.Cluster)) + btoi(shards[1].Owns(l.Cluster)); owners != 1 {
			t.Fatalf("%s has %d owners", l.Cluster, owners)
		}
	}
	if _, err := (Shard{Index: 0, Count: 3}).WithPlan(plan); err == nil {
		t.Fatal("a plan for 2 shards served shard 0/3")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Three shards of one trace against one sim play every record of a
// cluster once between them (and the sources' subscribes each), each by
// the plan it made from the trace.
func TestShardedRunsPlayEveryRecordOnce(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 7, 2, 1000
	trace := generateTrace(t, p)
	plan := PlanShards(traceLoads(t, trace), 3)
	played := map[uint64]int{}
	flows := map[uint64]format.Flow{}
	var wg sync.WaitGroup
	outs := make([]string, 3)
	errs := make([]error, 3)
	for i := range 3 {
		outs[i] = filepath.Join(t.TempDir(), "run")
		cfg := baseConfig(s, trace, outs[i])
		cfg.Max, cfg.CreateConsumers = true, true
		cfg.Shard = Shard{Index: i, Count: 3}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(context.Background(), cfg)
			if err == nil && !res.OK() {
				err = fmt.Errorf("shard %d not OK: %v", i, res.Summary.Problems)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		info := readRunInfo(t, out)
		own := plan.Shards[i]
		if want := fmt.Sprintf("by events: %d clusters, %d events, %d bytes", own.Clusters, own.Events, own.Bytes); info.Settings["shard_plan"] != want {
			t.Errorf("shard %d: run.json shard_plan %q, want %q", i, info.Settings["shard_plan"], want)
		}
		for idx, recs := range readOutcomes(t, out) {
			for _, r := range recs {
				if r.Outcome.Status != format.OutcomeSkipped {
					played[idx]++
				}
				flows[idx] = r.Flow
			}
		}
	}
	m, _ := format.ReadManifest(trace)
	for idx := range uint64(m.Records) {
		want := 1
		if flows[idx] == format.FlowSourceSubscribe {
			want = 3 // every shard subscribes the sources, for its own clusters
		}
		if played[idx] != want {
			t.Errorf("record %d (%s) has %d outcomes other than skipped over the 3 shards, want %d", idx, flows[idx], played[idx], want)
		}
	}
}

// Shards of a trace that records deliveries and forwards (as a recording
// does): each shard gives another shard's deliveries and forwards the
// other-shard outcome, not "answers a record that was not replayed"
// (which counts as missing and failed every shard), and every record is
// played by exactly one shard.
func TestShardsOfRecordedTrace(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 6, Works: 2}.write(t, trace)
	const n = 2
	outs := make([]map[uint64][]format.Record, n)
	for i := range n {
		cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
		cfg.Max, cfg.CreateConsumers, cfg.Shard = true, true, Shard{Index: i, Count: n}
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Fatalf("shard %d not OK: %v", i, res.Summary.Problems)
		}
		outs[i] = checkAccounting(t, trace, cfg.Out)
	}
	for idx, o := range outs[0] {
		played := 0
		for i := range n {
			if out := outs[i][idx][0].Outcome; !(out.Status == format.OutcomeSkipped && out.Note == noteOtherShard) {
				played++
			}
		}
		if rec := o[0]; played != 1 && rec.Flow != format.FlowSourceSubscribe {
			t.Errorf("record %d (%s %s) played by %d shards, want 1", idx, rec.Flow, rec.Actor, played)
		}
	}
}
