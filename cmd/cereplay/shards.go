package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/replay"
)

// shardSplit is the JSON form of inspect --shards.
type shardSplit struct {
	Shards int                `json:"shards"`
	Plan   []replay.ShardLoad `json:"plan"`
	Spread map[string]float64 `json:"spread"`
	Hash   []replay.ShardLoad `json:"by_name_hash"`
	Hashed map[string]float64 `json:"by_name_hash_spread"`
}

// inspectShards prints how replay --shard i/n splits the trace at src: the
// plan every shard makes from the trace, beside the split by name hash.
func inspectShards(c *cli.Context, src string, opts format.OpenOptions, n int) error {
	if n < 1 {
		return usagef("inspect: --shards %d: want 1 or more", n)
	}
	rd, err := format.OpenSource(c.Context, src, opts)
	if err != nil {
		return err
	}
	defer rd.Close()
	loads, err := replay.TraceLoads(c.Context, rd)
	if err != nil {
		return err
	}
	plan, hash := replay.PlanShards(loads, n), replay.HashPlan(loads, n)
	spread := func(p *replay.ShardPlan) map[string]float64 {
		cl, ev, by := p.Spread()
		return map[string]float64{"clusters": cl, "events": ev, "bytes": by}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(shardSplit{Shards: n, Plan: plan.Shards, Spread: spread(plan), Hash: hash.Shards, Hashed: spread(hash)})
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "shard\tclusters\tevents\tbytes\t\n")
	for i, s := range plan.Shards {
		fmt.Fprintf(tw, "%d/%d\t%d\t%d\t%d\t\n", i, n, s.Clusters, s.Events, s.Bytes)
	}
	pct := func(m map[string]float64) string {
		return fmt.Sprintf("%.2f%%\t%.2f%%\t%.2f%%\t", 100*m["clusters"], 100*m["events"], 100*m["bytes"])
	}
	fmt.Fprintf(tw, "spread\t%s\n", pct(spread(plan)))
	fmt.Fprintf(tw, "by name hash\t%s\n", pct(spread(hash)))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "spread: the largest shard over the smallest, minus one. replay --shard i/%d plays the\n"+
		"plan above (heaviest clusters first, each to the shard with the fewest events), the same in every shard.\n", n)
	return err
}
