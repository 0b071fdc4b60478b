package report

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
	"github.com/cereplay/cereplay/sim"
)

// fixture is two real runs of one small trace against sim, with sim's
// metrics scraped, made once for the tests of this package.
var fixture struct {
	once sync.Once
	dirs []string
	err  error
}

func twoRuns(t *testing.T) []string {
	t.Helper()
	fixture.once.Do(func() {
		root, err := os.MkdirTemp("", "cereplay-report-test-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dirs, fixture.err = makeRuns(root)
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.dirs
}

func makeRuns(root string) ([]string, error) {
	ctx := context.Background()
	s, err := sim.Start(ctx, sim.LoopbackConfig())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	trace := filepath.Join(root, "trace")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 4, 3, 100
	p.SubscribePause, p.CreateAfter = 0, 0
	if _, err := generate.Generate(ctx, trace, p, nil); err != nil {
		return nil, err
	}
	var dirs []string
	for i, id := range []string{"first", "second"} {
		out := filepath.Join(root, id)
		cfg := replay.Config{Trace: trace, Out: out, SourceAddrs: []string{s.SourceAddr()}, BrokerAddrs: []string{s.BrokerAddr()},
			RESTURL: s.RESTURL(), CreateConsumers: i == 0, RunID: id, Rate: 60, LateWarn: time.Hour, Settle: 5 * time.Second,
			TargetMetrics: []string{"http://" + s.MetricsAddr() + "/metrics"}, Interval: 40 * time.Millisecond}
		res, err := replay.Run(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if !res.OK() {
			return nil, &runError{res.Summary.Problems}
		}
		dirs = append(dirs, out)
	}
	return dirs, nil
}

type runError struct{ problems []string }

func (e *runError) Error() string { return "run failed: " + strings.Join(e.problems, "; ") }

func TestMain(m *testing.M) {
	code := m.Run()
	if len(fixture.dirs) > 0 {
		_ = os.RemoveAll(filepath.Dir(fixture.dirs[0]))
	}
	os.Exit(code)
}

func buildTwoRuns(t *testing.T) ([]*Run, *Report) {
	t.Helper()
	runs, err := LoadAll(twoRuns(t))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(runs, 0)
	if err != nil {
		t.Fatal(err)
	}
	return runs, rep
}

// The page of two real runs has every chart, each a well-formed SVG with a
// line per run, and nothing that would be fetched: no script, no link.
func TestReportHTML(t *testing.T) {
	runs, rep := buildTwoRuns(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, id := range []string{"throughput", "publish", "spec_delivery", "status_forward", "send_lateness",
		"inflight", "errors", "agents", "target_cpu", "target_rss"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("no %s chart", id)
		}
	}
	for _, bad := range []string{"<script", "src=", "href=", "url(", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q: it must open offline", bad)
		}
	}
	svgs := 0
	for rest := page; ; {
		i := strings.Index(rest, `<svg class="chart"`)
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>") + i + len("</svg>")
		var v struct {
			Paths []struct {
				D string `xml:"d,attr"`
			} `xml:"path"`
		}
		if err := xml.Unmarshal([]byte(rest[i:j]), &v); err != nil {
			t.Fatalf("chart %d is not well-formed SVG: %v", svgs, err)
		}
		if len(v.Paths) < 2 {
			t.Errorf("chart %d has %d lines, want one per run at least", svgs, len(v.Paths))
		}
		svgs++
		rest = rest[j:]
	}
	if svgs != len(rep.Charts) || svgs < 9 {
		t.Errorf("%d charts drawn, %d in the report", svgs, len(rep.Charts))
	}
	for _, r := range runs {
		if !strings.Contains(page, r.Info.TraceDigest) || !strings.Contains(page, r.Name) {
			t.Errorf("the header lacks run %s or its digest", r.Name)
		}
	}
}

// --format json gives the same data, and the target charts hold sim's
// CPU (cores) and RSS (MiB) over the run.
func TestReportJSON(t *testing.T) {
	_, rep := buildTwoRuns(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 2 || back.Runs[0].T0.IsZero() || !back.Runs[1].OK {
		t.Fatalf("runs: %+v", back.Runs)
	}
	charts := map[string]Chart{}
	for _, c := range back.Charts {
		charts[c.ID] = c
	}
	for _, id := range []string{"target_cpu", "target_rss"} {
		perRun := map[int]int{}
		for _, s := range charts[id].Series {
			for _, seg := range s.Segments {
				for _, p := range seg {
					if p[1] < 0 || (id == "target_rss" && p[1] < 1) {
						t.Errorf("%s: point %v", id, p)
					}
					perRun[s.Run]++
				}
			}
		}
		if perRun[0] < 2 || perRun[1] < 2 {
			t.Errorf("%s: points per run %v", id, perRun)
		}
	}
	var sent float64
	for _, s := range charts["throughput"].Series {
		if s.Label == "specs sent" && s.Run == 0 {
			for _, seg := range s.Segments {
				for _, p := range seg {
					sent += p[1]
				}
			}
		}
	}
	if sent <= 0 {
		t.Errorf("no specs sent in the throughput chart")
	}
}

// A run as long as the full scale test at its 20 works/s (7,500 s) with
// two targets scraped every second still gives a page of at most 2 MB.
func TestReportSizeBound(t *testing.T) {
	t.Parallel()
	n := 7500
	if testing.Short() {
		n = 800 // still more than DefaultMaxPoints: downsampled
	}
	dir := filepath.Join(t.TempDir(), "long")
	writeSyntheticRun(t, dir, n)
	runs, err := LoadAll([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(runs, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 2<<20 {
		t.Fatalf("the page of %d intervals is %d bytes, want at most 2 MB", n, buf.Len())
	}
	for _, c := range rep.Charts {
		for _, s := range c.Series {
			pts := 0
			for _, seg := range s.Segments {
				pts += len(seg)
			}
			if pts > DefaultMaxPoints+3 {
				t.Errorf("%s %s: %d points", c.ID, s.Label, pts)
			}
		}
	}
	t.Logf("%d intervals: %d bytes", n, buf.Len())
}

func writeSyntheticRun(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	info := replay.RunInfo{Tool: "cereplay", TraceDigest: "sha256:synthetic", Mode: "rate 20/s", T0: t0, Start: t0,
		End: t0.Add(time.Duration(n) * time.Second), Settings: map[string]string{"mode": "rate 20/s"}}
	sum := replay.Summary{TraceDigest: info.TraceDigest, OK: true, Outcomes: map[string]int64{"delivered": int64(40 * n)}}
	for name, v := range map[string]any{replay.RunFile: info, replay.SummaryFile: sum} {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	encs := make([]string, 16)
	for i := range encs {
		h := timeline.NewHistogram()
		for k := range 20 {
			_ = h.RecordValue(int64((i+1)*(k+1)) * int64(time.Millisecond/7))
		}
		encs[i], _ = timeline.Encode(h)
	}
	var tl, tm bytes.Buffer
	for i := range n {
		iv := timeline.Interval{Index: i, Start: t0.Add(time.Duration(i) * time.Second), End: t0.Add(time.Duration(i+1) * time.Second),
			Counters: map[string]float64{"specs_sent": 20, "statuses_sent": 20, "deliveries": 20, "forwards": float64(20 + i%3)},
			Gauges:   map[string]float64{"inflight": float64(i % 17), "agents_connected": 3000},
			Histograms: map[string]string{"publish/a:8090": encs[i%16], "publish/a:8091": encs[(i+3)%16],
				replay.HistSpecDelivery: encs[(i+5)%16], replay.HistStatusForward: encs[(i+7)%16], replay.HistSendLateness: encs[(i+9)%16]}}
		b, _ := json.Marshal(iv)
		tl.Write(append(b, '\n'))
		for _, target := range []string{"http://m1:8080/metrics", "http://m2:8080/metrics"} {
			sc := scrape.Scrape{Time: iv.End, Target: target, Samples: []scrape.Sample{
				{Name: "process_cpu_seconds_total", Value: float64(i) * 0.7}, {Name: "process_resident_memory_bytes", Value: float64(1<<30 + i<<16)}}}
			if i%500 == 499 {
				sc = scrape.Scrape{Time: iv.End, Target: target, Error: "connection refused"}
			}
			b, _ := json.Marshal(sc)
			tm.Write(append(b, '\n'))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, timeline.File), tl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scrape.File), tm.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// LTTB keeps the first and last points and a lone spike, and returns as
// many points as asked.
func TestLTTB(t *testing.T) {
	t.Parallel()
	pts := make([]Point, 10000)
	for i := range pts {
		pts[i] = Point{float64(i), float64(i % 7)}
	}
	pts[6543][1] = 1000
	out := LTTB(pts, 300)
	if len(out) != 300 || out[0] != pts[0] || out[len(out)-1] != pts[len(pts)-1] {
		t.Fatalf("%d points, ends %v %v", len(out), out[0], out[len(out)-1])
	}
	spike := false
	for i, p := range out {
		spike = spike || p[1] == 1000
		if i > 0 && p[0] <= out[i-1][0] {
			t.Fatalf("points out of order at %d", i)
		}
	}
	if !spike {
		t.Error("the spike was lost")
	}
	if got := LTTB(pts[:10], 300); len(got) != 10 {
		t.Errorf("short input changed: %d points", len(got))
	}
}

func TestLoadNotARun(t *testing.T) {
	t.Parallel()
	_, err := Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run.json") {
		t.Fatalf("err %v", err)
	}
}
