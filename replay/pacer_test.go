package replay

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestPacers(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name   string
		p      Pacer
		n      uint64
		offset time.Duration
		want   time.Duration
	}{
		{"speed 1 keeps offsets", SpeedPacer{Speed: 1}, 7, 1500 * ms, 1500 * ms},
		{"speed 0 means 1", SpeedPacer{}, 7, 1500 * ms, 1500 * ms},
		{"speed 2 halves", SpeedPacer{Speed: 2}, 7, 1500 * ms, 750 * ms},
		{"speed 0.5 doubles", SpeedPacer{Speed: 0.5}, 0, 1500 * ms, 3000 * ms},
		{"speed ignores position", SpeedPacer{Speed: 4}, 1 << 40, 4 * time.Second, time.Second},
		{"speed saturates", SpeedPacer{Speed: 1e-9}, 0, time.Duration(math.MaxInt64 / 2), time.Duration(math.MaxInt64)},
		{"rate first is at T0", RatePacer{Rate: 2000}, 0, time.Hour, 0},
		{"rate ignores offsets", RatePacer{Rate: 2000}, 1, time.Hour, 500 * time.Microsecond},
		{"rate 2000 event 4000", RatePacer{Rate: 2000}, 4000, 0, 2 * time.Second},
		{"rate 3 rounds", RatePacer{Rate: 3}, 1, 0, 333333333},
		{"rate 0 is at once", RatePacer{}, 9, time.Second, 0},
		{"max is at once", MaxPacer{}, 1e6, time.Hour, 0},
		{"func", PacerFunc(func(n uint64, o time.Duration) time.Duration { return time.Duration(n) * o }), 3, ms, 3 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Due(tc.n, tc.offset); got != tc.want {
				t.Errorf("Due(%d, %v) = %v, want %v", tc.n, tc.offset, got, tc.want)
			}
		})
	}
}

// A rate schedule is computed from T0, never by adding gaps: the due time
// of event n does not drift, however many events came before.
func TestRatePacerDoesNotDrift(t *testing.T) {
	t.Parallel()
	p := RatePacer{Rate: 3} // 1/3 s does not divide a nanosecond evenly
	var sum time.Duration
	for n := uint64(1); n <= 3_000_000; n++ {
		sum += p.Due(n, 0) - p.Due(n-1, 0)
	}
	if got, want := p.Due(3_000_000, 0), 1_000_000*time.Second; got != want || sum != want {
		t.Fatalf("Due(3e6) = %v, summed gaps %v, want %v", got, sum, want)
	}
}

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

func TestFakeClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	c := NewFakeClock(t0)
	ctx := context.Background()
	if err := c.SleepUntil(ctx, t0.Add(time.Second)); err != nil || !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("SleepUntil forward: now %v, err %v", c.Now(), err)
	}
	_ = c.SleepUntil(ctx, t0) // the past: no change
	if !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("SleepUntil into the past moved the clock to %v", c.Now())
	}
	c.Advance(time.Minute)
	if !c.Now().Equal(t0.Add(time.Minute + time.Second)) {
		t.Fatalf("Advance: %v", c.Now())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.SleepUntil(cctx, t0.Add(time.Hour)); err == nil {
		t.Fatal("SleepUntil with a cancelled context returned nil")
	}
}

// PreciseClock never returns before the due time (also when the sleep
// takes several chunks), and honours cancellation while it sleeps.
func TestPreciseClockNeverEarly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Without a spin (-1) the fine sleep alone must not wake early either.
	for _, c := range []PreciseClock{{}, {SpinWindow: -1}, {SpinWindow: 20 * time.Microsecond}} {
		for _, d := range []time.Duration{0, 50 * time.Microsecond, 700 * time.Microsecond, 1600 * time.Microsecond, 3 * time.Millisecond, 3*sleepChunk/2 + time.Millisecond} {
			due := time.Now().Add(d)
			if err := c.SleepUntil(ctx, due); err != nil {
				t.Fatal(err)
			}
			if now := time.Now(); now.Before(due) {
				t.Fatalf("spin window %v, wait %v: returned %v before due", c.SpinWindow, d, due.Sub(now))
			}
		}
	}
	c := PreciseClock{}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.SleepUntil(cctx, start.Add(time.Hour)); err == nil {
		t.Fatal("SleepUntil outlived its context")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("SleepUntil ignored cancellation")
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
