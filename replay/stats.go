package replay

import (
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency is a concurrency-safe HDR histogram of durations, kept in
// nanoseconds from 1 ns to one hour with three significant digits, so
// percentiles are exact to 0.1 % whatever the spread.
type Latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

const maxTracked = int64(time.Hour)

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(1, maxTracked, 3)}
}

// Record adds one duration; negative values count as 0 and values above an
// hour as an hour.
func (l *Latency) Record(d time.Duration) {
	v := int64(d)
	if v < 1 {
		v = 1
	}
	if v > maxTracked {
		v = maxTracked
	}
	l.mu.Lock()
	_ = l.h.RecordValue(v) // in range by construction
	l.mu.Unlock()
}

// Count returns how many durations were recorded.
func (l *Latency) Count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.TotalCount()
}

// Summary returns the count, mean and percentiles.
func (l *Latency) Summary() LatencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() == 0 {
		return LatencySummary{}
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return LatencySummary{
		Count: l.h.TotalCount(),
		Min:   us(l.h.Min()),
		Mean:  l.h.Mean() / 1e3,
		P50:   us(l.h.ValueAtQuantile(50)),
		P90:   us(l.h.ValueAtQuantile(90)),
		P99:   us(l.h.ValueAtQuantile(99)),
		P999:  us(l.h.ValueAtQuantile(99.9)),
		Max:   us(l.h.Max()),
	}
}

// LatencySummary is a histogram's digest, in microseconds.
type LatencySummary struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
}

// latencySet is a named family of histograms (one per port, per address).
type latencySet struct {
	mu sync.Mutex
	m  map[string]*Latency
}

func (s *latencySet) get(name string) *Latency {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Latency{}
	}
	l := s.m[name]
	if l == nil {
		l = NewLatency()
		s.m[name] = l
	}
	return l
}

func (s *latencySet) summaries() map[string]LatencySummary {
	s.mu.Lock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := make(map[string]LatencySummary, len(names))
	for _, n := range names {
		out[n] = s.get(n).Summary()
	}
	return out
}
