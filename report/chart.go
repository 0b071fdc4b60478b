package report

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
)

// Point is one chart point: seconds since the run's T0, and the value.
type Point [2]float64

// Series is one line of a chart. Where a run has no data (a failed scrape,
// an interval without a latency) the line is broken: each segment is drawn
// on its own, nothing is made up in between.
type Series struct {
	Run      int       `json:"run"` // index into Report.Runs
	Label    string    `json:"label"`
	Segments [][]Point `json:"segments"`
}

// Chart is one chart: every run's series of one quantity.
type Chart struct {
	ID     string   `json:"id"`
	Title  string   `json:"title"`
	Unit   string   `json:"unit"`
	Log    bool     `json:"log_scale,omitempty"`
	Series []Series `json:"series"`
}

// Header is what the report says about each run above the charts.
type Header struct {
	Name        string            `json:"name"`
	Dir         string            `json:"dir"`
	TraceDigest string            `json:"trace_digest"`
	Mode        string            `json:"mode"`
	Settings    map[string]string `json:"settings"`
	T0          time.Time         `json:"t0"`
	Start       time.Time         `json:"start"`
	End         time.Time         `json:"end"`
	Outcomes    map[string]int64  `json:"outcomes"`
	Records     int64             `json:"records"`
	OK          bool              `json:"ok"`
	Problems    []string          `json:"problems,omitempty"`
	Schedule    string            `json:"schedule,omitempty"`
	Targets     []string          `json:"targets,omitempty"`
}

// Report is the data of a report: the same for the HTML page and --format
// json.
type Report struct {
	Runs   []Header `json:"runs"`
	Charts []Chart  `json:"charts"`
}

// DefaultMaxPoints bounds the points of each line: long runs are
// downsampled (LTTB) to it, which keeps the page of a two-hour run small
// while its peaks stay visible.
const DefaultMaxPoints = 600

// Build turns runs into a report, each line downsampled to at most
// maxPoints points (DefaultMaxPoints when 0).
func Build(runs []*Run, maxPoints int) (*Report, error) {
	if maxPoints <= 0 {
		maxPoints = DefaultMaxPoints
	}
	rep := &Report{}
	charts := []*Chart{
		{ID: "throughput", Title: "Sends and deliveries per second", Unit: "/s"},
	}
	lat := map[string]*Chart{}
	for _, l := range latencies {
		c := &Chart{ID: l.Key, Title: l.Title + ", per interval", Unit: "ms", Log: true}
		lat[l.Key] = c
		charts = append(charts, c)
	}
	inflight := &Chart{ID: "inflight", Title: "Publish calls in flight", Unit: "calls"}
	errChart := &Chart{ID: "errors", Title: "Errors per second, by gRPC code", Unit: "/s"}
	agents := &Chart{ID: "agents", Title: "Agent streams connected", Unit: "streams"}
	cpu := &Chart{ID: "target_cpu", Title: "Target CPU", Unit: "cores"}
	rss := &Chart{ID: "target_rss", Title: "Target memory (RSS)", Unit: "MiB"}
	charts = append(charts, inflight, errChart, agents, cpu, rss)

	for i, r := range runs {
		rep.Runs = append(rep.Runs, header(r))
		t0 := r.Info.T0
		if t0.IsZero() {
			t0 = r.Info.Start
		}
		rate := func(label string, value func(iv *timeline.Interval) float64) Series {
			s := Series{Run: i, Label: label}
			var seg []Point
			for k := range r.Timeline {
				iv := &r.Timeline[k]
				if dt := iv.End.Sub(iv.Start).Seconds(); dt > 0 {
					seg = append(seg, Point{iv.End.Sub(t0).Seconds(), value(iv) / dt})
				}
			}
			s.Segments = nonEmpty(seg)
			return s
		}
		counter := func(name string) func(iv *timeline.Interval) float64 {
			return func(iv *timeline.Interval) float64 { return iv.Counters[name] }
		}
		charts[0].Series = append(charts[0].Series,
			rate("specs sent", counter("specs_sent")),
			rate("statuses sent", counter("statuses_sent")),
			rate("spec deliveries", counter("deliveries")),
			rate("status forwards", counter("forwards")))
		// Decoding every interval's histograms is most of the work: one
		// goroutine per latency.
		res := make([][]Series, len(latencies))
		errs := make([]error, len(latencies))
		var wg sync.WaitGroup
		for k, l := range latencies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[k], errs[k] = percentiles(r, i, t0, l.match)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for k, l := range latencies {
			lat[l.Key].Series = append(lat[l.Key].Series, res[k]...)
		}
		gauge := func(label, name string) Series {
			var seg []Point
			for _, iv := range r.Timeline {
				seg = append(seg, Point{iv.End.Sub(t0).Seconds(), iv.Gauges[name]})
			}
			return Series{Run: i, Label: label, Segments: nonEmpty(seg)}
		}
		inflight.Series = append(inflight.Series, gauge("in flight", "inflight"))
		agents.Series = append(agents.Series, gauge("connected", "agents_connected"))
		codes := map[string]bool{}
		for _, iv := range r.Timeline {
			for k := range iv.Counters {
				if c, ok := strings.CutPrefix(k, "errors/"); ok {
					codes[c] = true
				}
			}
		}
		if len(codes) == 0 {
			errChart.Series = append(errChart.Series, rate("errors", func(*timeline.Interval) float64 { return 0 }))
		}
		for _, c := range sortedSet(codes) {
			errChart.Series = append(errChart.Series, rate(c, counter("errors/"+c)))
		}
		c, m := targetSeries(r, i, t0)
		cpu.Series = append(cpu.Series, c...)
		rss.Series = append(rss.Series, m...)
	}
	for _, c := range charts {
		for k := range c.Series {
			c.Series[k].Segments = downsample(c.Series[k].Segments, maxPoints)
		}
		if hasData(c) {
			rep.Charts = append(rep.Charts, *c)
		}
	}
	return rep, nil
}

func header(r *Run) Header {
	h := Header{Name: r.Name, Dir: r.Dir, TraceDigest: r.Info.TraceDigest, Mode: r.Info.Mode, Settings: r.Info.Settings,
		T0: r.Info.T0, Start: r.Info.Start, End: r.Info.End}
	if s := r.Summary; s != nil {
		h.Outcomes, h.Records, h.OK, h.Problems = s.Outcomes, s.Records, s.OK, s.Problems
		if sc := s.Schedule; sc != nil {
			verdict := "kept"
			if !sc.Kept {
				verdict = "NOT kept"
			}
			h.Schedule = fmt.Sprintf("%s: %d of %d sends later than %s", verdict, sc.Late, sc.Sends,
				time.Duration(sc.BoundUS*1e3))
		}
	}
	seen := map[string]bool{}
	for _, sc := range r.Targets {
		if !seen[sc.Target] {
			seen[sc.Target] = true
			h.Targets = append(h.Targets, sc.Target)
		}
	}
	return h
}

// percentiles returns the p50 and p99 of the matching histograms in each
// interval, in milliseconds.
func percentiles(r *Run, run int, t0 time.Time, match func(string) bool) ([]Series, error) {
	qs := []struct {
		label string
		q     float64
	}{{"p50", 50}, {"p99", 99}}
	ps := make([]float64, len(qs))
	for j, q := range qs {
		ps[j] = q.q
	}
	out := make([]Series, len(qs))
	segs := make([][]Point, len(qs))
	for k := range r.Timeline {
		iv := &r.Timeline[k]
		h, err := intervalHistogram(iv, match)
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", r.Dir, err)
		}
		if h == nil { // nothing to measure: a break in the line, not a zero
			for j := range qs {
				out[j].Segments = append(out[j].Segments, nonEmpty(segs[j])...)
				segs[j] = nil
			}
			continue
		}
		x := iv.End.Sub(t0).Seconds()
		vs := h.ValueAtPercentiles(ps) // one walk of the histogram for all
		for j, q := range qs {
			segs[j] = append(segs[j], Point{x, float64(vs[q.q]) / 1e6})
		}
	}
	for j, q := range qs {
		out[j].Run, out[j].Label = run, q.label
		out[j].Segments = append(out[j].Segments, nonEmpty(segs[j])...)
	}
	return out, nil
}

// intervalHistogram returns the interval's matching histograms merged; nil
// when none has a value.
func intervalHistogram(iv *timeline.Interval, match func(string) bool) (*hdrhistogram.Histogram, error) {
	var out *hdrhistogram.Histogram
	for name := range iv.Histograms {
		if !match(name) {
			continue
		}
		h, err := iv.Histogram(name)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = h
		} else {
			out.Merge(h)
		}
	}
	if out == nil || out.TotalCount() == 0 {
		return nil, nil
	}
	return out, nil
}

func ms(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1e6
}

// targetSeries returns, per target, its CPU in cores (the rate of
// process_cpu_seconds_total between two scrapes that both succeeded) and
// its RSS in MiB. A failed scrape breaks both lines.
func targetSeries(r *Run, run int, t0 time.Time) (cpu, rss []Series) {
	byTarget := map[string][]scrape.Scrape{}
	var order []string
	for _, sc := range r.Targets {
		if byTarget[sc.Target] == nil {
			order = append(order, sc.Target)
		}
		byTarget[sc.Target] = append(byTarget[sc.Target], sc)
	}
	for _, target := range order {
		label := targetLabel(target)
		c, m := Series{Run: run, Label: label}, Series{Run: run, Label: label}
		var cseg, mseg []Point
		var prev *scrape.Scrape
		for k, sc := range byTarget[target] {
			if sc.Gap() {
				c.Segments, m.Segments = append(c.Segments, nonEmpty(cseg)...), append(m.Segments, nonEmpty(mseg)...)
				cseg, mseg, prev = nil, nil, nil
				continue
			}
			x := sc.Time.Sub(t0).Seconds()
			if v, ok := sc.Value("process_resident_memory_bytes", nil); ok {
				mseg = append(mseg, Point{x, v / (1 << 20)})
			}
			if v, ok := sc.Value("process_cpu_seconds_total", nil); ok && prev != nil {
				if pv, ok := prev.Value("process_cpu_seconds_total", nil); ok {
					if dt := sc.Time.Sub(prev.Time).Seconds(); dt > 0 && v >= pv {
						cseg = append(cseg, Point{x, (v - pv) / dt})
					}
				}
			}
			prev = &byTarget[target][k]
		}
		c.Segments, m.Segments = append(c.Segments, nonEmpty(cseg)...), append(m.Segments, nonEmpty(mseg)...)
		cpu, rss = append(cpu, c), append(rss, m)
	}
	return cpu, rss
}

// targetLabel shortens a metrics URL to its host, the instance's name.
func targetLabel(target string) string {
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		return u.Host
	}
	return target
}

func nonEmpty(seg []Point) [][]Point {
	if len(seg) == 0 {
		return nil
	}
	return [][]Point{seg}
}

func hasData(c *Chart) bool {
	for _, s := range c.Series {
		if len(s.Segments) > 0 {
			return true
		}
	}
	return false
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// downsample keeps at most max points over all segments of a line, each
// segment getting a share by its length.
func downsample(segs [][]Point, max int) [][]Point {
	n := 0
	for _, s := range segs {
		n += len(s)
	}
	if n <= max {
		return segs
	}
	out := make([][]Point, 0, len(segs))
	for _, s := range segs {
		out = append(out, LTTB(s, int(math.Max(3, float64(max)*float64(len(s))/float64(n)))))
	}
	return out
}

// LTTB downsamples points (sorted by x) to at most threshold points with
// Steinarsson's Largest-Triangle-Three-Buckets: the first and last point
// stay, and from each bucket between them the point that makes the
// largest triangle with its neighbours, so peaks and dips survive where an
// average would flatten them.
func LTTB(pts []Point, threshold int) []Point {
	if threshold >= len(pts) || threshold < 3 {
		return pts
	}
	out := make([]Point, 0, threshold)
	out = append(out, pts[0])
	every := float64(len(pts)-2) / float64(threshold-2)
	a := 0
	for i := 0; i < threshold-2; i++ {
		// The next bucket's average is the third corner of the triangle.
		nStart, nEnd := int(float64(i+1)*every)+1, int(float64(i+2)*every)+1
		nEnd = min(nEnd, len(pts))
		var ax, ay float64
		for _, p := range pts[nStart:nEnd] {
			ax += p[0]
			ay += p[1]
		}
		if cnt := float64(nEnd - nStart); cnt > 0 {
			ax, ay = ax/cnt, ay/cnt
		}
		start, end := int(float64(i)*every)+1, int(float64(i+1)*every)+1
		best, bestArea := start, -1.0
		for j := start; j < end; j++ {
			area := math.Abs((pts[a][0]-ax)*(pts[j][1]-pts[a][1]) - (pts[a][0]-pts[j][0])*(ay-pts[a][1]))
			if area > bestArea {
				best, bestArea = j, area
			}
		}
		out = append(out, pts[best])
		a = best
	}
	return append(out, pts[len(pts)-1])
}
