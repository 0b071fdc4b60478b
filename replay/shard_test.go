package replay

import (
	"fmt"
	"testing"
)

func TestParseShard(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"x", "1/1", "2/2", "-1/3", "0/0", "3"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
	sh, err := ParseShard("1/3")
	if err != nil || sh != (Shard{1, 3}) || sh.String() != "1/3" {
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
			if (Shard{i, n}).Owns(name) {
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
