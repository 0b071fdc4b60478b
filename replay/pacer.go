package replay

import (
	"fmt"
	"math"
	"time"
)

// Pacer decides when an event leaves, as a duration after the start instant
// T0. The schedule is a pure function of the event's position and recorded
// offset: due times are never built by adding up gaps, so a late send does
// not push back the ones after it, and several replayers that share T0 (and
// a shard scheme) share one schedule.
type Pacer interface {
	// Due returns when the n-th paced event (0-based, counted over the whole
	// trace, shards included) with recorded offset is due after T0.
	Due(n uint64, offset time.Duration) time.Duration
}

// PacerFunc adapts a function to the Pacer interface.
type PacerFunc func(n uint64, offset time.Duration) time.Duration

// Due calls f.
func (f PacerFunc) Due(n uint64, offset time.Duration) time.Duration { return f(n, offset) }

// Compile-time checks.
var (
	_ Pacer = PacerFunc(nil)
	_ Pacer = SpeedPacer{}
	_ Pacer = RatePacer{}
	_ Pacer = MaxPacer{}
)

// SpeedPacer keeps the recorded offsets, scaled: an event recorded at offset
// o is due at o/Speed. Speed 2 plays twice as fast; 0 means 1.
type SpeedPacer struct{ Speed float64 }

// Due returns offset/Speed.
func (p SpeedPacer) Due(_ uint64, offset time.Duration) time.Duration {
	return scale(offset, p.Speed)
}

// RatePacer ignores recorded offsets and spaces events evenly at Rate
// events per second: event n is due at n/Rate.
type RatePacer struct{ Rate float64 }

// Due returns n/Rate seconds.
func (p RatePacer) Due(n uint64, _ time.Duration) time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	return time.Duration(math.Round(float64(n) * float64(time.Second) / p.Rate))
}

// MaxPacer makes every event due at once: the replay sends as fast as the
// target accepts, bounded only by the in-flight limit.
type MaxPacer struct{}

// Due returns 0.
func (MaxPacer) Due(uint64, time.Duration) time.Duration { return 0 }

// scale divides d by speed (speed 0 counts as 1), saturating instead of
// overflowing.
func scale(d time.Duration, speed float64) time.Duration {
	if speed == 0 || speed == 1 {
		return d
	}
	v := float64(d) / speed
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Round(v))
}

// Shard selects the part of a trace one replayer plays when several share
// it: clusters are split by a stable hash of their name, so every shard gets
// whole agents (their specs and their statuses).
type Shard struct {
	Index, Count int // 0 <= Index < Count; Count 0 or 1 means everything
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

// Owns reports whether this shard plays the given cluster (or source: every
// shard plays every source, for its own clusters).
func (s Shard) Owns(cluster string) bool {
	if s.Count <= 1 {
		return true
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
