package report

import (
	"strings"
	"testing"
)

func TestParseThreshold(t *testing.T) {
	t.Parallel()
	good := map[string]Threshold{
		"spec_delivery.p99=+10%":           {Metric: "spec_delivery.p99", Op: "change%", Limit: 10, Relative: true},
		"throughput.events_per_second=-5%": {Metric: "throughput.events_per_second", Op: "change%", Limit: -5, Relative: true},
		"errors=+0":                        {Metric: "errors", Op: "change", Limit: 0},
		"publish.p99<=500ms":               {Metric: "publish.p99", Op: "<=", Limit: 500},
		"publish.p99.9 <= 1.5s":            {Metric: "publish.p99.9", Op: "<=", Limit: 1500},
		"send_lateness.p99<=100us":         {Metric: "send_lateness.p99", Op: "<=", Limit: 0.1},
		"target.cpu_cores>=0.5":            {Metric: "target.cpu_cores", Op: ">=", Limit: 0.5},
	}
	for in, want := range good {
		got, err := ParseThreshold(in)
		want.Raw = strings.TrimSpace(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "p99", "publish.p99=10%", "publish.p99<=10%", "publish.p99=+10ms", "publish.p99~5", "Publish.p99<=1"} {
		if _, err := ParseThreshold(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	ths, err := ParseThresholds(strings.NewReader(DefaultThresholds), "default")
	if err != nil || len(ths) != 3 || ths[0].Raw != "publish.p99<=500ms" {
		t.Fatalf("default thresholds: %+v, %v", ths, err)
	}
	if _, err := ParseThresholds(strings.NewReader("errors=+0\nnonsense\n"), "f"); err == nil || !strings.Contains(err.Error(), "f line 2") {
		t.Errorf("bad file: %v", err)
	}
}

// Two real runs: every threshold form is judged against the runs' own
// figures, a metric nobody knows is refused, and so are runs of
// different traces.
func TestCompareRuns(t *testing.T) {
	runs, err := LoadAll(twoRuns(t))
	if err != nil {
		t.Fatal(err)
	}
	base, nw := runs[0], runs[1]
	parse := func(ss ...string) []Threshold {
		var out []Threshold
		for _, s := range ss {
			th, err := ParseThreshold(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, th)
		}
		return out
	}
	c, err := Compare(base, nw, parse("publish.p50<=3600s", "errors=+0", "publish.p50=+1000000%", "publish.p50<=1ns", "target.peak_rss_mib>=1"), false)
	if err != nil {
		t.Fatal(err)
	}
	holds := []bool{true, true, true, false, true}
	for i, v := range c.Verdicts {
		if v.Holds != holds[i] {
			t.Errorf("%s: holds %v (%s), want %v", v.Raw, v.Holds, v.Reason, holds[i])
		}
	}
	if c.OK {
		t.Error("a broken threshold, yet OK")
	}
	rows := map[string]Metric{}
	for _, m := range c.Metrics {
		rows[m.Name] = m
	}
	for _, n := range []string{"throughput.events_per_second", "publish.p99", "spec_delivery.p99.9", "status_forward.p50", "target.cpu_cores", "target.peak_rss_mib"} {
		if m := rows[n]; !m.HasBase || !m.HasNew || m.New <= 0 {
			t.Errorf("metric %s: %+v", n, m)
		}
	}
	var text strings.Builder
	if err := c.WriteText(&text); err != nil || !strings.Contains(text.String(), "BROKEN publish.p50<=1ns") ||
		!strings.Contains(text.String(), "compare FAILED: 1 of 5") {
		t.Errorf("text:\n%s", text.String())
	}
	if _, err := Compare(base, nw, parse("publish.p42<=1s"), false); err == nil {
		t.Error("an unknown metric was judged")
	}
	other := *nw
	other.Info.TraceDigest = "sha256:other"
	if _, err := Compare(base, &other, nil, false); err == nil {
		t.Error("runs of different traces were compared")
	}
	if _, err := Compare(base, &other, nil, true); err != nil {
		t.Errorf("--allow-different-traces: %v", err)
	}

	// A run made before histograms.json: its latencies come from its
	// summary, which holds the same histograms' percentiles.
	old := *nw
	old.Histograms = nil
	c, err = Compare(nw, &old, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Metrics {
		if strings.HasPrefix(m.Name, "spec_delivery.") || strings.HasPrefix(m.Name, "status_forward.") {
			if !m.HasNew || m.Change == nil || *m.Change > 0.01 || *m.Change < -0.01 {
				t.Errorf("%s from the summary: %+v", m.Name, m)
			}
		}
	}
}
