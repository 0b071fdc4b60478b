package report

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cereplay/cereplay/replay"
)

// DefaultThresholds is Maestro's published SLO as thresholds: 99 % of gRPC
// calls complete within 500 ms, and a change must not lose or fail events.
//
//go:embed maestro-slo.thresholds
var DefaultThresholds string

// Metric is one row of a comparison.
type Metric struct {
	Name string  `json:"name"`
	Unit string  `json:"unit"`
	Base float64 `json:"base"`
	New  float64 `json:"new"`
	// HasBase and HasNew say whether each run has the data (a run at
	// --max has no send lateness, a run without --target-metrics no CPU).
	HasBase bool `json:"has_base"`
	HasNew  bool `json:"has_new"`
	// Change is (new-base)/base in percent; NaN (null) when base is 0.
	Change *float64 `json:"change_percent"`
}

// metrics returns a run's comparable figures by name, and their units.
// Latencies come from the whole-run HDR histograms (exact); a run
// without them falls back to the summary's percentiles.
func metrics(r *Run) (map[string]float64, map[string]string) {
	v, unit := map[string]float64{}, map[string]string{}
	s := r.Summary
	v["throughput.events_per_second"], unit["throughput.events_per_second"] = s.EventsPerSecond, "/s"
	v["throughput.specs_per_second"], unit["throughput.specs_per_second"] = s.SpecsPerSecond, "/s"
	for _, l := range latencies {
		if r.Histograms == nil {
			summaryLatency(s, l.Key, v, unit)
			continue
		}
		h := r.wholeHistogram(l.match)
		if h.TotalCount() == 0 {
			continue
		}
		for _, q := range quantiles {
			name := l.Key + "." + q.name
			v[name], unit[name] = ms(h, q.q), "ms"
		}
	}
	v["errors"], unit["errors"] = float64(s.Outcomes["failed"]), "events"
	v["missing"], unit["missing"] = float64(s.Outcomes["missing"]), "events"
	if cpu, rss, ok := targetTotals(r); ok {
		v["target.cpu_cores"], unit["target.cpu_cores"] = cpu, "cores"
		v["target.peak_rss_mib"], unit["target.peak_rss_mib"] = rss, "MiB"
	}
	return v, unit
}

// summaryLatency fills a latency's percentiles from summary.json, for a
// run made before histograms.json existed. Publish latency is kept per
// address there, and percentiles do not merge: it is used only when the
// run had one address.
func summaryLatency(s *replay.Summary, key string, v map[string]float64, unit map[string]string) {
	var l replay.LatencySummary
	switch key {
	case "publish":
		if len(s.PublishLatency) != 1 {
			return
		}
		for _, x := range s.PublishLatency {
			l = x
		}
	case "spec_delivery":
		l = s.SpecDelivery
	case "status_forward":
		l = s.StatusForward
	case "send_lateness":
		l = s.SendLateness
	}
	if l.Count == 0 {
		return
	}
	for _, q := range []struct {
		name string
		us   float64
	}{{"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"p99.9", l.P999}} {
		v[key+"."+q.name], unit[key+"."+q.name] = q.us/1e3, "ms"
	}
}

var quantiles = []struct {
	name string
	q    float64
}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}}

// targetTotals returns the targets' mean CPU over the run, in cores,
// summed over targets (each from its first to its last good scrape), and
// the highest RSS any target reached, in MiB.
func targetTotals(r *Run) (cpu, rss float64, ok bool) {
	type span struct {
		first, last   time.Time
		cpu0, cpu1    float64
		hasCPU, hasTo bool
	}
	spans := map[string]*span{}
	for _, sc := range r.Targets {
		if sc.Gap() {
			continue
		}
		if m, has := sc.Value("process_resident_memory_bytes", nil); has {
			rss, ok = math.Max(rss, m/(1<<20)), true
		}
		c, has := sc.Value("process_cpu_seconds_total", nil)
		if !has {
			continue
		}
		sp := spans[sc.Target]
		if sp == nil {
			spans[sc.Target] = &span{first: sc.Time, cpu0: c, hasCPU: true}
			continue
		}
		sp.last, sp.cpu1, sp.hasTo = sc.Time, c, true
	}
	for _, sp := range spans {
		if sp.hasTo && sp.last.After(sp.first) {
			cpu += (sp.cpu1 - sp.cpu0) / sp.last.Sub(sp.first).Seconds()
			ok = true
		}
	}
	return cpu, rss, ok
}

// Threshold is one rule a comparison checks, in one of three forms:
//
//	spec_delivery.p99=+10%   NEW at most 10 % above BASE (-5% for at most 5 % below)
//	errors=+0                NEW at most BASE + 0 (an absolute change, in the metric's unit)
//	publish.p99<=500ms       NEW at most 500 ms (>= for at least); ms, s, us or µs on latencies
type Threshold struct {
	Raw      string  `json:"threshold"`
	Metric   string  `json:"metric"`
	Op       string  `json:"op"` // "change%", "change", "<=", ">="
	Limit    float64 `json:"limit"`
	Relative bool    `json:"-"`
}

var thresholdRE = regexp.MustCompile(`^([a-z_.0-9]+)\s*(=|<=|>=)\s*([+-]?[0-9.]+(?:e[+-]?[0-9]+)?)\s*(%|ms|s|us|µs|ns)?$`)

// ParseThreshold parses one threshold; the error says what is wrong.
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	m := thresholdRE.FindStringSubmatch(s)
	if m == nil {
		return Threshold{}, fmt.Errorf("threshold %q: want METRIC=+N%%, METRIC=+N, METRIC<=V or METRIC>=V", s)
	}
	t := Threshold{Raw: s, Metric: m[1]}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return t, fmt.Errorf("threshold %q: bad number %q", s, m[3])
	}
	switch m[2] {
	case "=":
		if m[3][0] != '+' && m[3][0] != '-' {
			return t, fmt.Errorf("threshold %q: a change needs its sign (+N or -N): which way may it move?", s)
		}
		switch m[4] {
		case "%":
			t.Op, t.Relative = "change%", true
		case "":
			t.Op = "change"
		default:
			return t, fmt.Errorf("threshold %q: a change is in %% or in the metric's own unit", s)
		}
	default:
		if m[4] == "%" {
			return t, fmt.Errorf("threshold %q: a bound is a value, not a %%", s)
		}
		t.Op = m[2]
		switch m[4] { // latencies are compared in ms
		case "s":
			v *= 1e3
		case "us", "µs":
			v /= 1e3
		case "ns":
			v /= 1e6
		}
	}
	t.Limit = v
	return t, nil
}

// ParseThresholds reads thresholds one per line; # starts a comment.
func ParseThresholds(r io.Reader, name string) ([]Threshold, error) {
	var out []Threshold
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		t, err := ParseThreshold(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Verdict is whether one threshold holds.
type Verdict struct {
	Threshold
	Holds  bool   `json:"holds"`
	Reason string `json:"reason"`
}

// Comparison is two runs side by side and the verdict of each threshold.
type Comparison struct {
	Base     Header    `json:"base"`
	New      Header    `json:"new"`
	Metrics  []Metric  `json:"metrics"`
	Verdicts []Verdict `json:"verdicts"`
	OK       bool      `json:"ok"` // every threshold holds
}

// ErrDifferentTraces refuses a comparison of runs of different traces.
var ErrDifferentTraces = errors.New("report: the runs played different traces")

// ErrUnknownMetric marks a threshold on a metric compare does not know.
var ErrUnknownMetric = errors.New("report: unknown metric")

// Compare compares NEW against BASE and judges each threshold. It refuses
// runs of different traces unless allowDifferentTraces, and thresholds on
// metrics it does not know.
func Compare(base, nw *Run, ths []Threshold, allowDifferentTraces bool) (*Comparison, error) {
	if base.Info.TraceDigest != nw.Info.TraceDigest && !allowDifferentTraces {
		return nil, fmt.Errorf("%w: %s played %s, %s played %s (--allow-different-traces compares them anyway)",
			ErrDifferentTraces, base.Dir, base.Info.TraceDigest, nw.Dir, nw.Info.TraceDigest)
	}
	bv, units := metrics(base)
	nv, nunits := metrics(nw)
	for k, u := range nunits {
		units[k] = u
	}
	names := make([]string, 0, len(units))
	for k := range units {
		names = append(names, k)
	}
	sort.SliceStable(names, func(i, j int) bool { return metricOrder(names[i]) < metricOrder(names[j]) })
	c := &Comparison{Base: header(base), New: header(nw), OK: true}
	rows := map[string]Metric{}
	for _, n := range names {
		b, bok := bv[n]
		v, nok := nv[n]
		m := Metric{Name: n, Unit: units[n], Base: b, New: v, HasBase: bok, HasNew: nok}
		if bok && nok && b != 0 {
			ch := (v - b) / b * 100
			m.Change = &ch
		}
		c.Metrics = append(c.Metrics, m)
		rows[n] = m
	}
	for _, t := range ths {
		if !knownMetric(t.Metric) {
			return nil, fmt.Errorf("%w %q in threshold %q; known: %s", ErrUnknownMetric, t.Metric, t.Raw, strings.Join(knownMetrics(), ", "))
		}
		vd := judge(t, rows[t.Metric], bv, nv)
		c.OK = c.OK && vd.Holds
		c.Verdicts = append(c.Verdicts, vd)
	}
	return c, nil
}

func judge(t Threshold, m Metric, bv, nv map[string]float64) Verdict {
	vd := Verdict{Threshold: t}
	v, nok := nv[t.Metric]
	b, bok := bv[t.Metric]
	unit := m.Unit
	switch t.Op {
	case "<=", ">=":
		if !nok {
			vd.Reason = "NEW has no data for it"
			return vd
		}
		vd.Holds = (t.Op == "<=" && v <= t.Limit) || (t.Op == ">=" && v >= t.Limit)
		vd.Reason = fmt.Sprintf("new %s, bound %s %s", fmtValue(v, unit), t.Op, fmtValue(t.Limit, unit))
		return vd
	}
	if !nok || !bok {
		vd.Reason = "BASE or NEW has no data for it"
		return vd
	}
	allowed := b + t.Limit
	if t.Relative {
		allowed = b * (1 + t.Limit/100)
	}
	if t.Limit >= 0 {
		vd.Holds = v <= allowed
	} else {
		vd.Holds = v >= allowed
	}
	vd.Reason = fmt.Sprintf("base %s, new %s (%s), allowed %s", fmtValue(b, unit), fmtValue(v, unit), pct(m.Change), fmtValue(allowed, unit))
	return vd
}

// knownMetrics lists every metric name a threshold may use.
func knownMetrics() []string {
	out := []string{"throughput.events_per_second", "throughput.specs_per_second"}
	for _, l := range latencies {
		for _, q := range quantiles {
			out = append(out, l.Key+"."+q.name)
		}
	}
	return append(out, "errors", "missing", "target.cpu_cores", "target.peak_rss_mib")
}

func knownMetric(n string) bool {
	for _, k := range knownMetrics() {
		if k == n {
			return true
		}
	}
	return false
}

func metricOrder(n string) int {
	for i, k := range knownMetrics() {
		if k == n {
			return i
		}
	}
	return 1 << 20
}

func fmtValue(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.3gms", v)
	case "events":
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprintf("%.4g %s", v, unit)
}

func pct(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", *p)
}

// WriteText prints the comparison as a table and the verdicts.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "compare BASE %s (%s) with NEW %s (%s)\n", c.Base.Name, c.Base.Mode, c.New.Name, c.New.Mode)
	if c.Base.TraceDigest == c.New.TraceDigest {
		fmt.Fprintf(&b, "  trace %s (both)\n", c.Base.TraceDigest)
	} else {
		fmt.Fprintf(&b, "  traces differ: base %s, new %s\n", c.Base.TraceDigest, c.New.TraceDigest)
	}
	fmt.Fprintf(&b, "  %-30s %14s %14s %9s\n", "metric", "base", "new", "change")
	for _, m := range c.Metrics {
		base, nw := "-", "-"
		if m.HasBase {
			base = fmtValue(m.Base, m.Unit)
		}
		if m.HasNew {
			nw = fmtValue(m.New, m.Unit)
		}
		fmt.Fprintf(&b, "  %-30s %14s %14s %9s\n", m.Name, base, nw, pct(m.Change))
	}
	broken := 0
	for _, v := range c.Verdicts {
		word := "holds "
		if !v.Holds {
			word = "BROKEN"
			broken++
		}
		fmt.Fprintf(&b, "  %s %-28s %s\n", word, v.Raw, v.Reason)
	}
	if broken == 0 {
		fmt.Fprintf(&b, "compare OK: %d thresholds hold\n", len(c.Verdicts))
	} else {
		fmt.Fprintf(&b, "compare FAILED: %d of %d thresholds broken\n", broken, len(c.Verdicts))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
