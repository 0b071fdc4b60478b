package generate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Delay is a distribution of delays, such as the time an agent takes to
// apply a work and report its status. It is written as a flag value:
//
//	lognormal:median=1s,sigma=0.5,max=30s   a skewed delay with a tail (default max 60s)
//	uniform:min=500ms,max=2s                every delay in [min, max] equally likely
//	fixed:1s  (or just 1s)                  always the same delay
//
// Samples are rounded to whole milliseconds, which keeps traces identical
// across machines even where floating-point functions differ in their last
// bit, and are never below 1ms: a reply never comes at the very instant of
// what it answers.
type Delay struct {
	Kind   string        // "lognormal", "uniform" or "fixed"
	Median time.Duration // lognormal
	Sigma  float64       // lognormal: the standard deviation of ln(delay)
	Min    time.Duration // uniform
	Max    time.Duration // lognormal: cap; uniform: upper bound
	Value  time.Duration // fixed
}

// minDelay is the smallest delay a sample takes.
const minDelay = time.Millisecond

// DefaultApplyDelay is an agent's apply-and-report delay: median 1s, and
// one in a hundred above ~3.2s.
var DefaultApplyDelay = Delay{Kind: "lognormal", Median: time.Second, Sigma: 0.5, Max: time.Minute}

// DefaultAvailableDelay is the time from Applied to Available when a work
// reports twice: the Deployments' pods starting, median 3s.
var DefaultAvailableDelay = Delay{Kind: "lognormal", Median: 3 * time.Second, Sigma: 0.4, Max: time.Minute}

// ParseDelay parses a flag value (see Delay).
func ParseDelay(s string) (Delay, error) {
	kind, args, hasArgs := strings.Cut(strings.TrimSpace(s), ":")
	if !hasArgs {
		d, err := time.ParseDuration(kind)
		if err != nil {
			return Delay{}, fmt.Errorf("generate: delay %q: want lognormal:median=D,sigma=S[,max=D], uniform:min=D,max=D, fixed:D or a duration", s)
		}
		return Delay{Kind: "fixed", Value: d}, Delay{Kind: "fixed", Value: d}.Validate()
	}
	switch kind {
	case "fixed":
		d, err := time.ParseDuration(args)
		if err != nil {
			return Delay{}, fmt.Errorf("generate: delay %q: %w", s, err)
		}
		dl := Delay{Kind: "fixed", Value: d}
		return dl, dl.Validate()
	case "lognormal", "uniform":
	default:
		return Delay{}, fmt.Errorf("generate: delay %q: unknown distribution %q (want lognormal, uniform or fixed)", s, kind)
	}
	d := Delay{Kind: kind}
	if kind == "lognormal" {
		d.Max = time.Minute
	}
	for _, kv := range strings.Split(args, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Delay{}, fmt.Errorf("generate: delay %q: %q is not key=value", s, kv)
		}
		var err error
		switch {
		case k == "median" && kind == "lognormal":
			d.Median, err = time.ParseDuration(v)
		case k == "sigma" && kind == "lognormal":
			d.Sigma, err = strconv.ParseFloat(v, 64)
		case k == "min" && kind == "uniform":
			d.Min, err = time.ParseDuration(v)
		case k == "max":
			d.Max, err = time.ParseDuration(v)
		default:
			return Delay{}, fmt.Errorf("generate: delay %q: %s takes no %q", s, kind, k)
		}
		if err != nil {
			return Delay{}, fmt.Errorf("generate: delay %q: %s: %w", s, k, err)
		}
	}
	return d, d.Validate()
}

// Validate reports a distribution that cannot be sampled.
func (d Delay) Validate() error {
	switch d.Kind {
	case "fixed":
		if d.Value < 0 {
			return fmt.Errorf("generate: delay %s: negative", d)
		}
	case "lognormal":
		if d.Median <= 0 || d.Sigma < 0 || math.IsNaN(d.Sigma) || d.Sigma > 10 || d.Max < d.Median {
			return fmt.Errorf("generate: delay %s: want median > 0, 0 <= sigma <= 10 and max >= median", d)
		}
	case "uniform":
		if d.Min < 0 || d.Max < d.Min {
			return fmt.Errorf("generate: delay %s: want 0 <= min <= max", d)
		}
	default:
		return fmt.Errorf("generate: delay: unknown distribution %q", d.Kind)
	}
	return nil
}

// String returns the flag value that parses back to d.
func (d Delay) String() string {
	switch d.Kind {
	case "fixed":
		return "fixed:" + d.Value.String()
	case "lognormal":
		return fmt.Sprintf("lognormal:median=%s,sigma=%s,max=%s", d.Median, strconv.FormatFloat(d.Sigma, 'g', -1, 64), d.Max)
	case "uniform":
		return fmt.Sprintf("uniform:min=%s,max=%s", d.Min, d.Max)
	}
	return "delay(" + d.Kind + ")"
}

// max is the longest delay Sample returns.
func (d Delay) max() time.Duration {
	switch d.Kind {
	case "fixed":
		return max(d.Value, minDelay)
	case "lognormal", "uniform":
		return max(d.Max, minDelay)
	}
	return 0
}

// Sample draws one delay from r.
func (d Delay) Sample(r *rand.Rand) time.Duration {
	var v time.Duration
	switch d.Kind {
	case "fixed":
		v = d.Value
	case "uniform":
		if span := int64(d.Max - d.Min); span < math.MaxInt64 {
			v = d.Min + time.Duration(r.Int64N(span+1))
		} else {
			v = time.Duration(r.Int64())
		}
	case "lognormal":
		// The explicit float64 conversions keep the compiler from fusing
		// multiply-adds, which some architectures would round differently.
		x := float64(d.Sigma * r.NormFloat64())
		ms := float64(float64(d.Median.Milliseconds()) * math.Exp(x))
		v = time.Duration(min(math.Round(ms), float64(d.Max.Milliseconds()))) * time.Millisecond
	}
	v = v.Round(time.Millisecond)
	return max(v, minDelay)
}
