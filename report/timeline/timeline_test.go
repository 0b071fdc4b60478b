package timeline

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/internal/syncbuf"
)

// Values observed from several goroutines while intervals are cut all end
// up in exactly one interval: the merge equals a histogram of them all.
// Counters are stored as each interval's growth, gauges as they were.
func TestRecorderIntervalsMergeExactly(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	var sent atomic.Int64
	sample := func() (map[string]float64, map[string]float64) {
		return map[string]float64{"sent": float64(sent.Load()), "flat": 5}, map[string]float64{"g": 1}
	}
	start := time.Now()
	rec := Start(&buf, start, 2*time.Millisecond, sample)
	want := NewHistogram()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				v := Clamp(time.Duration((g+1)*(i%977+1)) * time.Microsecond)
				rec.Observe("lat", v)
				sent.Add(1)
				mu.Lock()
				_ = want.RecordValue(v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if err := rec.Stop(end); err != nil {
		t.Fatal(err)
	}
	ivs, err := Read(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	last := ivs[len(ivs)-1]
	// The last interval ends at end, unless the recorder's timer cut a
	// boundary past end before Stop reached it (the goroutine calling
	// Stop was held up between reading the clock and stopping): then it
	// is empty, on the grid, at that boundary.
	late := last.End.After(end) && last.Start.Equal(last.End) && last.End.Sub(start)%(2*time.Millisecond) == 0
	if !ivs[0].Start.Equal(start) || !(last.End.Equal(end) || late) {
		t.Errorf("intervals from %v to %v, want %v to %v", ivs[0].Start, last.End, start, end)
	}
	got, err := Merge(ivs, func(n string) bool { return n == "lat" })
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(want) {
		t.Fatalf("merged n=%d, want n=%d", got.TotalCount(), want.TotalCount())
	}
	var total, flat float64
	for _, iv := range ivs {
		total += iv.Counters["sent"]
		flat += iv.Counters["flat"]
		if iv.Gauges["g"] != 1 {
			t.Errorf("interval %d gauges %v", iv.Index, iv.Gauges)
		}
	}
	if total != 12000 || flat != 5 {
		t.Errorf("counters add up to sent %v, flat %v; want 12000 and 5 (growth only)", total, flat)
	}
}

func TestReadNamesBadLine(t *testing.T) {
	t.Parallel()
	in := `{"i":0,"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z"}` + "\n" +
		`{"i":1,"start":"2026-01-01T00:00:01Z","end":"2026-01-01T00:00:00Z"}` + "\n"
	ivs, err := Read(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 2") || len(ivs) != 1 {
		t.Fatalf("%d intervals, err %v", len(ivs), err)
	}
	iv := Interval{Histograms: map[string]string{"x": "not a histogram"}}
	if _, err := iv.Histogram("x"); err == nil {
		t.Fatal("a bad histogram decoded")
	}
}

// Read and the histogram decoder never panic on damaged input.
func FuzzRead(f *testing.F) {
	h := NewHistogram()
	_ = h.RecordValue(12345)
	enc, _ := Encode(h)
	f.Add([]byte(`{"i":0,"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","counters":{"a":1},"histograms":{"x":"` + enc + `"}}` + "\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ivs, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, iv := range ivs {
			if iv.Start.IsZero() || iv.End.Before(iv.Start) {
				t.Fatalf("accepted %+v", iv)
			}
		}
		_, _ = Merge(ivs, func(string) bool { return true })
	})
}

// A stop asked for at an instant the recorder has already cut past (the
// timer won the race with it) still ends with a well-formed interval.
func TestRecorderStopBeforeLastCut(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	start := time.Now()
	rec := Start(&buf, start, time.Millisecond, func() (map[string]float64, map[string]float64) { return nil, nil })
	// Wait until at least two intervals have been cut, then stop "in the past".
	for {
		n := strings.Count(buf.String(), "\n")
		if n >= 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := rec.Stop(start); err != nil {
		t.Fatal(err)
	}
	ivs, err := Read(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("the timeline does not read back: %v", err)
	}
	last := ivs[len(ivs)-1]
	if last.End.Before(last.Start) {
		t.Fatalf("last interval %v to %v", last.Start, last.End)
	}
}

// A stop several intervals past the last cut still leaves every interval
// on the grid, none longer than the step.
func TestRecorderStopPastBoundaries(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	start := time.Now()
	every := 20 * time.Millisecond
	rec := Start(&buf, start, every, func() (map[string]float64, map[string]float64) { return nil, nil })
	if err := rec.Stop(start.Add(5*every + every/2)); err != nil {
		t.Fatal(err)
	}
	ivs, err := Read(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, iv := range ivs {
		if !iv.Start.Equal(start.Add(time.Duration(i)*every)) || iv.End.Sub(iv.Start) > every {
			t.Errorf("interval %d: %v to %v, off the grid of %v from %v", i, iv.Start, iv.End, every, start)
		}
	}
	if len(ivs) != 6 {
		t.Errorf("%d intervals, want 6", len(ivs))
	}
}

// Each name's histograms are reused from interval to interval: values
// that come while a cut encodes go into the spare of the last cut, and the
// cut ones become the next spares, so a run allocates two histograms per
// name, not new ones every interval.
func TestRecorderReusesHistograms(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	var r *Recorder
	observed := int64(0)
	observe := func() {
		observed++
		r.Observe("lat", observed*1000)
	}
	// The sampler runs inside cut, after the histograms were taken: a
	// value observed there is one that came while the cut was encoding.
	r = &Recorder{every: time.Second, start: start,
		sample: func() (map[string]float64, map[string]float64) { observe(); return nil, nil },
		cur:    map[string]*hdrhistogram.Histogram{}, spare: map[string]*hdrhistogram.Histogram{},
		w: bufio.NewWriter(&out), last: map[string]float64{}}
	seen := map[*hdrhistogram.Histogram]bool{}
	for i := range 10 {
		observe()
		r.mu.Lock()
		seen[r.cur["lat"]] = true
		r.mu.Unlock()
		r.cut(start.Add(time.Duration(i)*time.Second), start.Add(time.Duration(i+1)*time.Second))
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(seen) > 2 {
		t.Fatalf("10 intervals of one histogram used %d histograms, want at most 2", len(seen))
	}
	ivs, err := Read(&out)
	if err != nil || len(ivs) != 10 {
		t.Fatalf("read back %d intervals, %v; want 10", len(ivs), err)
	}
	// Interval 0 holds value 1; each later one the value observed during
	// the cut before it and the one before its own cut.
	for i, iv := range ivs {
		h, err := iv.Histogram("lat")
		want := int64(2)
		if i == 0 {
			want = 1
		}
		if err != nil || h.TotalCount() != want {
			t.Fatalf("interval %d: %v, count %d, want %d", i, err, h.TotalCount(), want)
		}
	}
}
