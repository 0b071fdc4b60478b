package pace

import (
	"math"
	"time"
)

// Pacer decides when an event leaves, as a duration after the start instant
// T0. The schedule is a pure function of the event's position and recorded
// offset: due times are never built by adding up gaps, so a late send does
// not push back the ones after it, and several replayers that share T0 (and
// a shard scheme) share one schedule. Everything that depends on the timing
// mode is a method here, so a replay never branches on the mode itself.
type Pacer interface {
	// Due returns when the n-th paced event (0-based, counted over the whole
	// trace, shards included) with recorded offset is due after T0.
	Due(n uint64, offset time.Duration) time.Duration
	// UncountedDue returns when a record the pacer does not count (a
	// subscribe, an agent event that answers nothing) with recorded offset
	// is due, given the due time of the last counted event before it.
	UncountedDue(offset, lastDue time.Duration) time.Duration
	// ReplyDelay returns how long after its trigger arrives a reply with
	// the recorded delay leaves.
	ReplyDelay(recorded time.Duration) time.Duration
	// Paced reports whether due times are a schedule to keep (false when
	// every event is due at once and the in-flight bound sets the pace).
	Paced() bool
}

// Compile-time checks.
var (
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

// UncountedDue keeps the record's own scaled offset.
func (p SpeedPacer) UncountedDue(offset, _ time.Duration) time.Duration {
	return scale(offset, p.Speed)
}

// ReplyDelay scales the recorded delay like the offsets.
func (p SpeedPacer) ReplyDelay(d time.Duration) time.Duration { return scale(d, p.Speed) }

// Paced is true.
func (SpeedPacer) Paced() bool { return true }

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

// UncountedDue returns lastDue: recorded offsets mean nothing at a fixed
// rate, so such a record goes with the counted event before it.
func (RatePacer) UncountedDue(_, lastDue time.Duration) time.Duration { return lastDue }

// ReplyDelay keeps the recorded delay: the rate spaces spec events only.
func (RatePacer) ReplyDelay(d time.Duration) time.Duration { return d }

// Paced is true.
func (RatePacer) Paced() bool { return true }

// MaxPacer makes every event due at once: the replay sends as fast as the
// target accepts, bounded only by the in-flight limit.
type MaxPacer struct{}

// Due returns 0.
func (MaxPacer) Due(uint64, time.Duration) time.Duration { return 0 }

// UncountedDue returns 0.
func (MaxPacer) UncountedDue(_, _ time.Duration) time.Duration { return 0 }

// ReplyDelay returns 0: a reply leaves as soon as its trigger arrives.
func (MaxPacer) ReplyDelay(time.Duration) time.Duration { return 0 }

// Paced is false.
func (MaxPacer) Paced() bool { return false }

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

// Dedicated reports whether a replay's pacer goroutine should wait on a
// Thread: on the real clock, when there is a schedule to keep.
func Dedicated(c Clock, p Pacer) bool {
	_, precise := c.(PreciseClock)
	return precise && p.Paced()
}
