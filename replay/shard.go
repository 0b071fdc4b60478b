package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// Shard selects the part of a trace one replayer plays when several share
// it: every shard gets whole clusters (their agent, their specs and their
// statuses). With a plan (WithPlan, which Run sets from the trace itself),
// clusters are spread so the shards carry the same events; a cluster the
// plan does not know, or a Shard without a plan, goes by a stable hash of
// its name. Owns is the one place that decides.
type Shard struct {
	Index, Count int // 0 <= Index < Count; Count 0 or 1 means everything
	plan         *ShardPlan
}

// ParseShard parses "i/n" (0-based i).
func ParseShard(s string) (Shard, error) {
	var sh Shard
	if s == "" {
		return Shard{}, nil
	}
	if _, err := fmt.Sscanf(s, "%d/%d", &sh.Index, &sh.Count); err != nil {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT such as 0/4", s)
	}
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return Shard{}, fmt.Errorf("shard %q: want 0 <= INDEX < COUNT", s)
	}
	return sh, nil
}

// WithPlan returns the shard deciding by plan, which must be for as many
// shards.
func (s Shard) WithPlan(plan *ShardPlan) (Shard, error) {
	if plan != nil && len(plan.Shards) != s.Count {
		return s, fmt.Errorf("replay: a plan for %d shards cannot serve shard %s", len(plan.Shards), s)
	}
	s.plan = plan
	return s, nil
}

// Planned reports whether the shard decides by a plan.
func (s Shard) Planned() bool { return s.plan != nil }

// Owns reports whether this shard plays the given cluster (or source: every
// shard plays every source, for its own clusters).
func (s Shard) Owns(cluster string) bool {
	if s.Count <= 1 {
		return true
	}
	if s.plan != nil {
		if i, ok := s.plan.owner[cluster]; ok {
			return i == s.Index
		}
	}
	return int(fnv32(cluster)%uint32(s.Count)) == s.Index
}

// String returns "i/n", or "" when there is no sharding.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// ClusterLoad is what one cluster weighs in a trace: its event records (an
// agent flow with the cluster as actor, or a source flow whose event names
// it as clustername) and their message bytes.
type ClusterLoad struct {
	Cluster string
	Events  int64
	Bytes   int64
}

// ShardLoad is what one shard of a plan carries.
type ShardLoad struct {
	Clusters int   `json:"clusters"`
	Events   int64 `json:"events"`
	Bytes    int64 `json:"bytes"`
}

// ShardPlan assigns clusters to shards.
type ShardPlan struct {
	Shards []ShardLoad
	owner  map[string]int
}

// PlanShards spreads clusters over n shards so that they carry the same
// number of events as nearly as whole clusters allow: the heaviest cluster
// first, each to the shard with the fewest events so far (then bytes, then
// clusters, then the lowest index). The plan depends only on loads and n,
// not on their order, so every replayer of the same trace makes the same.
func PlanShards(loads []ClusterLoad, n int) *ShardPlan {
	sorted := slices.Clone(loads)
	slices.SortFunc(sorted, func(a, b ClusterLoad) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Cluster, b.Cluster))
	})
	p := newShardPlan(n, len(loads))
	for _, l := range sorted {
		best := 0
		for i := 1; i < n; i++ {
			a, b := p.Shards[i], p.Shards[best]
			if cmp.Or(cmp.Compare(a.Events, b.Events), cmp.Compare(a.Bytes, b.Bytes), cmp.Compare(a.Clusters, b.Clusters)) < 0 {
				best = i
			}
		}
		p.assign(l, best)
	}
	return p
}

func newShardPlan(n, clusters int) *ShardPlan {
	return &ShardPlan{Shards: make([]ShardLoad, n), owner: make(map[string]int, clusters)}
}

// assign gives cluster l to shard i.
func (p *ShardPlan) assign(l ClusterLoad, i int) {
	p.owner[l.Cluster] = i
	s := &p.Shards[i]
	s.Clusters++
	s.Events += l.Events
	s.Bytes += l.Bytes
}

// HashPlan is the split a Shard without a plan makes (by a hash of the
// cluster name), in the same terms, to compare with PlanShards.
func HashPlan(loads []ClusterLoad, n int) *ShardPlan {
	p := newShardPlan(n, len(loads))
	for _, l := range loads {
		p.assign(l, int(fnv32(l.Cluster)%uint32(n)))
	}
	return p
}

// Spread is how uneven the shards are, for clusters, events and bytes:
// the largest shard over the smallest, minus one (0.01 is 1 %). An empty
// shard beside a non-empty one is +Inf.
func (p *ShardPlan) Spread() (clusters, events, bytes float64) {
	spread := func(v func(ShardLoad) int64) float64 {
		lo, hi := v(p.Shards[0]), v(p.Shards[0])
		for _, s := range p.Shards[1:] {
			lo, hi = min(lo, v(s)), max(hi, v(s))
		}
		if hi == lo {
			return 0
		}
		return float64(hi)/float64(lo) - 1 // lo 0: +Inf
	}
	return spread(func(s ShardLoad) int64 { return int64(s.Clusters) }),
		spread(func(s ShardLoad) int64 { return s.Events }),
		spread(func(s ShardLoad) int64 { return s.Bytes })
}

// TraceLoads reads a trace once and returns the load of every cluster in
// it, sorted by name: the consumers of the manifest and any other cluster a
// source event names.
func TraceLoads(ctx context.Context, rd *format.Reader) ([]ClusterLoad, error) {
	rd.ReuseBuffers()
	byName := map[string]*ClusterLoad{}
	add := func(cluster string, n int) {
		l := byName[cluster]
		if l == nil {
			l = &ClusterLoad{Cluster: cluster}
			byName[cluster] = l
		}
		l.Events++
		l.Bytes += int64(n)
	}
	if m := rd.Manifest(); m != nil {
		for _, c := range m.Consumers {
			byName[c] = &ClusterLoad{Cluster: c}
		}
	}
	for i := 0; ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("replay: weigh the clusters: %w", err)
		}
		switch {
		case rec.Type != format.TypeEvent:
		case rec.Flow.Agent():
			add(rec.Actor, len(rec.Data))
		case !rec.Flow.Subscribe():
			// A source's event is its cluster's; one that names none
			// (undecodable, or for no cluster) is every shard's.
			if k, err := maestro.ExtractKeys(rec.Data); err == nil && k.ClusterName != "" {
				add(k.ClusterName, len(rec.Data))
			}
		}
	}
	loads := make([]ClusterLoad, 0, len(byName))
	for _, l := range byName {
		loads = append(loads, *l)
	}
	slices.SortFunc(loads, func(a, b ClusterLoad) int { return cmp.Compare(a.Cluster, b.Cluster) })
	return loads, nil
}
