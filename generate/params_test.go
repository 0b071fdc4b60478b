package generate

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

func TestDefaultParamsAreTheScaleTest(t *testing.T) {
	p := DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Works() != 150_000 || p.Records() != 303_001 {
		t.Fatalf("default trace has %d works, %d records; want 150,000 and 303,001", p.Works(), p.Records())
	}
	if p.clusterName(0) != "maestro-cluster-1" || p.clusterName(2999) != "maestro-cluster-3000" || p.SourceID != "maestro" {
		t.Fatalf("default names %s..%s, source %s", p.clusterName(0), p.clusterName(2999), p.SourceID)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		flag   string
		mutate func(*Params)
	}{
		{"clusters", func(p *Params) { p.Clusters = 0 }},
		{"works-per-cluster", func(p *Params) { p.WorksPerCluster = -1 }},
		{"clusters", func(p *Params) { p.Clusters, p.WorksPerCluster = 100_000, 101 }},
		{"clusters", func(p *Params) { p.Clusters, p.WorksPerCluster = 2_000_000, 1 }},
		{"source-id", func(p *Params) { p.SourceID = "" }},
		{"source-id", func(p *Params) { p.SourceID = "bad\xff" }},
		{"source-id", func(p *Params) { p.SourceID = "line\nbreak" }},
		{"rate", func(p *Params) { p.Rate = 1e-9 }},
		{"rate", func(p *Params) { p.SubscribePause = 1 << 62 }},
		{"rate", func(p *Params) { p.Rate = 0 }},
		{"rate", func(p *Params) { p.Rate = math.NaN() }},
		{"rate", func(p *Params) { p.Rate = 1e10 }},
		{"creators", func(p *Params) { p.Creators = 0 }},
		{"status-updates", func(p *Params) { p.StatusUpdates = 3 }},
		{"status-updates", func(p *Params) { p.Status, p.StatusUpdates = StatusScaleTest, 2 }},
		{"status", func(p *Params) { p.Status = 9 }},
		{"order", func(p *Params) { p.Order = 9 }},
		{"subscribe-batch", func(p *Params) { p.SubscribeBatch = 0 }},
		{"subscribe-gap", func(p *Params) { p.SubscribeGap = -1 }},
		{"subscribe-pause", func(p *Params) { p.SubscribePause = -time.Second }},
		{"create-after", func(p *Params) { p.CreateAfter = -time.Second }},
		{"start-time", func(p *Params) { p.StartTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"cluster-prefix", func(p *Params) { p.ClusterPrefix = "Upper-" }},
		{"cluster-prefix", func(p *Params) { p.ClusterPrefix = strings.Repeat("x", 62) }},
		{"apply-delay", func(p *Params) { p.ApplyDelay = Delay{Kind: "lognormal", Median: -1} }},
		{"available-delay", func(p *Params) { p.StatusUpdates, p.AvailableDelay = 2, Delay{Kind: "bogus"} }},
		{"segment-size", func(p *Params) { p.SegmentSize = -1 }},
		{"segment-size", func(p *Params) { p.SegmentSize = 100 }},
		{"level", func(p *Params) { p.Level = -1 }},
		{"level", func(p *Params) { p.Level = 23 }},
		{"workers", func(p *Params) { p.Workers = -1 }},
		{"workers", func(p *Params) { p.Workers = format.MaxWorkers() + 1 }},
	}
	for _, tc := range tests {
		p := DefaultParams()
		tc.mutate(&p)
		err := p.Validate()
		if !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), "--"+tc.flag+":") {
			t.Errorf("%s: got %v, want an ErrParams naming --%s", tc.flag, err, tc.flag)
		}
	}
}

func TestParamsMapRoundTrip(t *testing.T) {
	p := DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate, p.Order, p.StatusUpdates = 7, 3, 12.5, OrderRoundRobin, 2
	p.ApplyDelay = Delay{Kind: "uniform", Min: time.Second, Max: 3 * time.Second}
	p.StartTime = time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	p.Seed, p.SegmentSize, p.Level = -42, 1<<20, 3
	got, err := ParamsFromMap(p.Map())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	if _, err := ParamsFromMap(map[string]string{"colour": "blue"}); !errors.Is(err, ErrParams) {
		t.Fatalf("unknown key: got %v", err)
	}
	if _, err := ParamsFromMap(map[string]string{"clusters": "many"}); err == nil || !strings.Contains(err.Error(), "clusters") {
		t.Fatalf("bad value: got %v", err)
	}
}

func TestCommandQuotesAndSorts(t *testing.T) {
	p := DefaultParams()
	p.SourceID = "my source"
	cmd := p.Command()
	if !strings.HasPrefix(cmd, "cereplay generate --apply-delay ") || !strings.Contains(cmd, "--source-id 'my source'") {
		t.Fatalf("command %q", cmd)
	}
}

func TestParseDelay(t *testing.T) {
	tests := []struct {
		in   string
		want Delay
	}{
		{"1s", Delay{Kind: "fixed", Value: time.Second}},
		{"fixed:250ms", Delay{Kind: "fixed", Value: 250 * time.Millisecond}},
		{"lognormal:median=1s,sigma=0.5", Delay{Kind: "lognormal", Median: time.Second, Sigma: 0.5, Max: time.Minute}},
		{"lognormal:median=2s,sigma=1,max=10s", Delay{Kind: "lognormal", Median: 2 * time.Second, Sigma: 1, Max: 10 * time.Second}},
		{"uniform:min=0s,max=2s", Delay{Kind: "uniform", Max: 2 * time.Second}},
	}
	for _, tc := range tests {
		got, err := ParseDelay(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDelay(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if again, err := ParseDelay(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q parses to %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "soon", "poisson:mean=1s", "lognormal:median=1s,sigma", "lognormal:median=0s,sigma=1",
		"lognormal:median=1s,sigma=-1", "uniform:min=2s,max=1s", "uniform:median=1s", "fixed:-1s", "fixed:x", "lognormal:median=1m,sigma=1,max=1s"} {
		if d, err := ParseDelay(bad); err == nil {
			t.Errorf("ParseDelay(%q) = %+v, want an error", bad, d)
		}
	}
}

func TestDelaySamples(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 20000
	samples := make([]time.Duration, n)
	for i := range samples {
		samples[i] = DefaultApplyDelay.Sample(r)
		if samples[i] < minDelay || samples[i] > DefaultApplyDelay.Max || samples[i]%time.Millisecond != 0 {
			t.Fatalf("sample %v outside [1ms, max] or not whole milliseconds", samples[i])
		}
	}
	slices.Sort(samples)
	median, p99 := samples[n/2], samples[n*99/100]
	// median 1s; p99 = exp(2.326 * 0.5) s = 3.2s
	if median < 950*time.Millisecond || median > 1050*time.Millisecond || p99 < 2900*time.Millisecond || p99 > 3500*time.Millisecond {
		t.Fatalf("lognormal median %v, p99 %v; want about 1s and 3.2s", median, p99)
	}
	u := Delay{Kind: "uniform", Min: time.Second, Max: 2 * time.Second}
	for i := 0; i < 1000; i++ {
		if s := u.Sample(r); s < time.Second || s > 2*time.Second {
			t.Fatalf("uniform sample %v outside [1s, 2s]", s)
		}
	}
	if s := (Delay{Kind: "fixed"}).Sample(r); s != minDelay {
		t.Fatalf("fixed 0 sampled %v, want the 1ms floor", s)
	}
}

func TestCreationOrder(t *testing.T) {
	for _, o := range []Order{OrderScaleTest, OrderRoundRobin, OrderCluster} {
		for _, size := range [][2]int{{1, 1}, {3000, 50}, {7, 3}, {13, 1}, {5, 8}} {
			ids, err := creationOrder(o, size[0], size[1], 6)
			if err != nil {
				t.Fatal(err)
			}
			sorted := slices.Clone(ids)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			for i, id := range sorted {
				if id != uint32(i) {
					t.Fatalf("%v %v: not a permutation of the works (position %d holds %d)", o, size, i, id)
				}
			}
		}
	}
	// The scale test: 6 creators of 500 clusters each, interleaved; each
	// creator finishes a cluster's 50 works before its next cluster.
	ids, _ := creationOrder(OrderScaleTest, 3000, 50, 6)
	for k := 0; k < 6; k++ {
		if c := int(ids[k]) / 50; c != k*500 {
			t.Fatalf("create %d is for cluster index %d, want %d (creator %d's first)", k, c, k*500, k)
		}
	}
	if c, w := int(ids[6*50])/50, int(ids[6*50])%50; c != 1 || w != 0 {
		t.Fatalf("creator 0's 51st create is cluster %d work %d, want cluster 1 work 0", c, w)
	}
	rr, _ := creationOrder(OrderRoundRobin, 3, 2, 0)
	if want := []uint32{0, 2, 4, 1, 3, 5}; !slices.Equal(rr, want) {
		t.Fatalf("round robin %v, want %v", rr, want)
	}
	for _, s := range []string{"scale-test", "round-robin", "cluster"} {
		if o, err := ParseOrder(s); err != nil || o.String() != s {
			t.Fatalf("ParseOrder(%q) = %v, %v", s, o, err)
		}
	}
	if _, err := ParseOrder("random"); err == nil {
		t.Fatal("ParseOrder accepted an unknown order")
	}
}

func TestSequenceIDsIncrease(t *testing.T) {
	var s sequenceIDs
	t0 := time.Date(2024, 12, 20, 8, 30, 0, 0, time.UTC)
	var last int64
	for i := 0; i < 10000; i++ {
		at := t0.Add(time.Duration(i/5000) * time.Millisecond) // 5000 in one ms overflows the step
		b := s.next(nil, at)
		var v int64
		for _, c := range b {
			v = v*10 + int64(c-'0')
		}
		if v <= last {
			t.Fatalf("id %d after %d", v, last)
		}
		if node := v >> 12 & 0x3ff; node != 1 {
			t.Fatalf("node %d, want 1", node)
		}
		last = v
	}
}

func TestResourceIDsMatchMaestro(t *testing.T) {
	r := newResourceIDs()
	for _, src := range []string{"maestro", "src-é", ""} {
		for c := 1; c <= 30; c += 7 {
			cluster := "maestro-cluster-" + strconv.Itoa(c)
			for w := 0; w < 60; w += 13 {
				work := cluster + WorkNameInfix + strconv.Itoa(w)
				got := string(r.appendID(nil, src, []byte(cluster), []byte(work)))
				if want := maestro.ResourceID(src, cluster, work); got != want {
					t.Fatalf("%s/%s/%s: %s, maestro.ResourceID says %s", src, cluster, work, got, want)
				}
			}
		}
	}
	// PROTOCOL.md §6's example.
	if got := string(r.appendID(nil, "maestro", []byte("maestro-cluster-1"), []byte("maestro-cluster-1-gb-0"))); got != "dda8b541-0bb7-5b43-b48c-ffff60a10ea1" {
		t.Fatalf("example resource id %s", got)
	}
}
