// Package timeline cuts a run into intervals and stores, for each, the
// counters that moved, the gauges at its end and the full HDR histograms
// of the latencies recorded in it, so that a run can be charted over time
// and runs, intervals and shards can be merged exactly later: a merge of
// HDR histograms is exact, an average of percentiles is not.
package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/internal/jsonl"
)

// Files of a run folder.
const (
	File           = "timeline.jsonl"  // one Interval per line
	HistogramsFile = "histograms.json" // the whole run's histograms
)

// Every latency histogram of a run tracks nanoseconds from 1 ns to an hour
// with three significant digits: one shape, so any two merge.
const (
	lowest  = 1
	highest = int64(time.Hour)
	digits  = 3
)

// NewHistogram returns an empty histogram of the shape every run uses.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(lowest, highest, digits) }

// Clamp maps a duration into the histograms' range: below 1 ns counts as
// 1 ns, above an hour as an hour.
func Clamp(d time.Duration) int64 { return min(max(int64(d), lowest), highest) }

// Encode returns h in HdrHistogram's compressed V2 form (base64 text), the
// form every HdrHistogram implementation reads. A caller that encodes
// many histograms keeps an Encoder instead, which reuses its buffers.
func Encode(h *hdrhistogram.Histogram) (string, error) {
	var e Encoder
	return e.Encode(h)
}

// Decode reads a histogram written by Encode. It refuses a histogram of
// another shape than NewHistogram's, which would not merge exactly.
func Decode(s string) (h *hdrhistogram.Histogram, err error) {
	// hdrhistogram.Decode indexes into its input without checking its
	// length: a damaged file must be an error, not a crash.
	defer func() {
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("timeline: decode histogram: damaged encoding (%v)", p)
		}
	}()
	h, err = hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("timeline: decode histogram: %w", err)
	}
	if h.LowestTrackableValue() != lowest || h.HighestTrackableValue() != highest || h.SignificantFigures() != digits {
		return nil, fmt.Errorf("timeline: decode histogram: range %d..%d with %d digits, want %d..%d with %d",
			h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures(), lowest, highest, digits)
	}
	return h, nil
}

// Interval is one line of the timeline file.
type Interval struct {
	Index int       `json:"i"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Counters hold how much each counter grew in the interval (those that
	// did not grow are left out); Gauges their value at its end.
	Counters map[string]float64 `json:"counters,omitempty"`
	Gauges   map[string]float64 `json:"gauges,omitempty"`
	// Histograms are the latencies recorded in the interval, encoded.
	Histograms map[string]string `json:"histograms,omitempty"`
}

// Sampler returns the run's counters (cumulative since the start) and
// gauges at the instant it is called.
type Sampler func() (counters, gauges map[string]float64)

// Recorder keeps the current interval's histograms and writes an Interval
// at the end of each.
type Recorder struct {
	every  time.Duration
	start  time.Time
	sample Sampler

	mu    sync.Mutex
	cur   map[string]*hdrhistogram.Histogram // recorded into now
	spare map[string]*hdrhistogram.Histogram // emptied, for the next interval

	w    *bufio.Writer
	enc  Encoder // used by cut only, which runs on loop's goroutine
	err  error
	last map[string]float64 // counters at the end of the previous interval
	n    int
	stop chan time.Time
	done chan struct{}
}

// Start begins the first interval at start and cuts one every interval
// until Stop, writing each to w.
func Start(w io.Writer, start time.Time, every time.Duration, sample Sampler) *Recorder {
	r := &Recorder{every: every, start: start, sample: sample, cur: map[string]*hdrhistogram.Histogram{},
		spare: map[string]*hdrhistogram.Histogram{}, w: bufio.NewWriter(w), last: map[string]float64{},
		stop: make(chan time.Time), done: make(chan struct{})}
	go r.loop()
	return r
}

// Observe records one value (nanoseconds, see Clamp) into the current
// interval's histogram of that name.
func (r *Recorder) Observe(name string, v int64) {
	r.mu.Lock()
	h := r.cur[name]
	if h == nil {
		h = r.spare[name]
		delete(r.spare, name)
		if h == nil {
			h = NewHistogram()
		}
		r.cur[name] = h
	}
	_ = h.RecordValue(min(max(v, lowest), highest))
	r.mu.Unlock()
}

func (r *Recorder) loop() {
	defer close(r.done)
	from := r.start
	for {
		to := from.Add(r.every)
		t := time.NewTimer(time.Until(to))
		select {
		case end := <-r.stop:
			t.Stop()
			r.finish(from, end)
			return
		case <-t.C:
			// A loop that fell behind finds its timer and a stop ready
			// at once; the stop goes first, so that the run's end, not
			// a boundary past it, ends the last interval.
			select {
			case end := <-r.stop:
				r.finish(from, end)
				return
			default:
			}
			r.cut(from, to)
			from = to
		}
	}
}

// finish cuts the intervals from from to the run's end.
func (r *Recorder) finish(from, end time.Time) {
	// The timer may have cut a boundary past a stop whose caller read
	// the clock just before it: the last interval never ends before it
	// starts.
	if end.Before(from) {
		end = from
	}
	// A stop past the next boundary (the timer fired late, or not yet):
	// the intervals stay on their grid, so that the shards of one run can
	// be merged interval by interval.
	for to := from.Add(r.every); end.After(to); to = from.Add(r.every) {
		r.cut(from, to)
		from = to
	}
	r.cut(from, end)
}

// cut ends the interval [from, to): it takes the histograms recorded so
// far (the recording goes on at once into emptied ones) and the counters,
// and writes the line.
func (r *Recorder) cut(from, to time.Time) {
	r.mu.Lock()
	hs := r.cur
	r.cur, r.spare = r.spare, map[string]*hdrhistogram.Histogram{}
	r.mu.Unlock()
	counters, gauges := r.sample()

	iv := Interval{Index: r.n, Start: from.UTC(), End: to.UTC(), Gauges: gauges}
	r.n++
	for k, v := range counters {
		if d := v - r.last[k]; d != 0 {
			if iv.Counters == nil {
				iv.Counters = map[string]float64{}
			}
			iv.Counters[k] = d
		}
	}
	r.last = counters
	for name, h := range hs {
		if h.TotalCount() > 0 {
			s, err := r.enc.Encode(h)
			r.fail(err)
			if iv.Histograms == nil {
				iv.Histograms = map[string]string{}
			}
			iv.Histograms[name] = s
		}
		h.Reset()
	}
	b, err := jsonl.Line(iv)
	r.fail(err)
	if err == nil {
		_, err = r.w.Write(b)
		r.fail(err)
		r.fail(r.w.Flush()) // the file is current while the run goes on
	}
	r.mu.Lock()
	// Give the emptied histograms back for the interval after next: the
	// current one records into the spares of the last cut, so with two of
	// each name a run allocates no histogram after its first intervals.
	for name, h := range hs {
		if r.spare[name] == nil {
			r.spare[name] = h
		}
	}
	r.mu.Unlock()
}

func (r *Recorder) fail(err error) {
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("timeline: %w", err)
	}
}

// Stop ends the last interval at end and returns the first error.
func (r *Recorder) Stop(end time.Time) error {
	r.stop <- end
	<-r.done
	return r.err
}

// Read reads a timeline file; a bad line is an error naming it.
func Read(rd io.Reader) ([]Interval, error) {
	var out []Interval
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var iv Interval
		if err := json.Unmarshal(sc.Bytes(), &iv); err != nil {
			return out, fmt.Errorf("timeline: %s line %d: %w", File, n, err)
		}
		if iv.Start.IsZero() || iv.End.Before(iv.Start) {
			return out, fmt.Errorf("timeline: %s line %d: bad interval %v to %v", File, n, iv.Start, iv.End)
		}
		out = append(out, iv)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("timeline: %s: %w", File, err)
	}
	return out, nil
}

// ReadFile reads the timeline file at path; a missing file is an empty
// timeline (a run made before timelines existed).
func ReadFile(path string) ([]Interval, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	return Read(f)
}

// Histogram decodes the interval's histogram of that name; nil when none
// was recorded.
func (iv *Interval) Histogram(name string) (*hdrhistogram.Histogram, error) {
	s, ok := iv.Histograms[name]
	if !ok {
		return nil, nil
	}
	h, err := Decode(s)
	if err != nil {
		return nil, fmt.Errorf("timeline: interval %d, %s: %w", iv.Index, name, err)
	}
	return h, nil
}

// Merge merges every histogram whose name is accepted by match, from every
// interval, into one.
func Merge(ivs []Interval, match func(name string) bool) (*hdrhistogram.Histogram, error) {
	out := NewHistogram()
	for i := range ivs {
		for name := range ivs[i].Histograms {
			if !match(name) {
				continue
			}
			h, err := ivs[i].Histogram(name)
			if err != nil {
				return nil, err
			}
			out.Merge(h)
		}
	}
	return out, nil
}

// Names returns the histogram names that occur in the timeline, sorted.
func Names(ivs []Interval) []string {
	seen := map[string]bool{}
	for _, iv := range ivs {
		for n := range iv.Histograms {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Histograms is the whole-run histograms file.
type Histograms map[string]string

// EncodeAll encodes every histogram of a run, for its histograms file.
func EncodeAll(hs map[string]*hdrhistogram.Histogram) (Histograms, error) {
	var enc Encoder
	return enc.EncodeAll(hs)
}

// EncodeAll is EncodeAll with e's buffers: a merge that encodes every
// interval's histograms reuses one Encoder for all of them.
func (e *Encoder) EncodeAll(hs map[string]*hdrhistogram.Histogram) (Histograms, error) {
	out := Histograms{}
	for name, h := range hs {
		s, err := e.Encode(h)
		if err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}

// ReadHistograms reads and decodes a whole-run histograms file; a missing
// file is no histograms.
func ReadHistograms(path string) (map[string]*hdrhistogram.Histogram, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	var enc Histograms
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("timeline: %s: %w", path, err)
	}
	out := map[string]*hdrhistogram.Histogram{}
	for name, s := range enc {
		h, err := Decode(s)
		if err != nil {
			return nil, fmt.Errorf("timeline: %s, %s: %w", path, name, err)
		}
		out[name] = h
	}
	return out, nil
}
