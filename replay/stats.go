package replay

import (
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/report/timeline"
)

// Latency is a concurrency-safe HDR histogram of durations, kept in
// nanoseconds from 1 ns to one hour with three significant digits, so
// percentiles are exact to 0.1 % whatever the spread. Every value it
// records also goes to its tap, when set: the run's timeline, which keeps
// the same values per interval.
type Latency struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram
	tap func(v int64)
}

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: timeline.NewHistogram()}
}

// Record adds one duration; negative values count as 0 and values above an
// hour as an hour.
func (l *Latency) Record(d time.Duration) {
	v := timeline.Clamp(d)
	l.mu.Lock()
	_ = l.h.RecordValue(v) // in range by construction
	l.mu.Unlock()
	if l.tap != nil {
		l.tap(v)
	}
}

// histogram returns a copy of the histogram.
func (l *Latency) histogram() *hdrhistogram.Histogram {
	l.mu.Lock()
	defer l.mu.Unlock()
	return hdrhistogram.Import(l.h.Export())
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
	return HistogramSummary(l.h)
}

// HistogramSummary returns the count, mean and percentiles of a histogram
// of nanoseconds (a run's, or shards' merged).
func HistogramSummary(h *hdrhistogram.Histogram) LatencySummary {
	if h == nil || h.TotalCount() == 0 {
		return LatencySummary{}
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return LatencySummary{
		Count: h.TotalCount(),
		Min:   us(h.Min()),
		Mean:  h.Mean() / 1e3,
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
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
// tap, when set, gives each new member's tap.
type latencySet struct {
	mu  sync.Mutex
	m   map[string]*Latency
	tap func(name string) func(int64)
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
		if s.tap != nil {
			l.tap = s.tap(name)
		}
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

// histograms returns a copy of every member's histogram, by name.
func (s *latencySet) histograms() map[string]*hdrhistogram.Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*hdrhistogram.Histogram, len(s.m))
	for n, l := range s.m {
		out[n] = l.histogram()
	}
	return out
}
