package scrape

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"

	"github.com/cereplay/cereplay/internal/syncbuf"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func count(t *testing.T, buf *syncbuf.Buffer) (ok, gaps int) {
	t.Helper()
	// The buffer may end in a partial line while the scraper writes.
	s := buf.String()
	s = s[:strings.LastIndexByte(s, '\n')+1]
	scs, err := Read(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		if sc.Gap() {
			gaps++
		} else {
			ok++
		}
	}
	return ok, gaps
}

// A target that goes away mid-run leaves gaps (errors, no samples), not
// zeros; the scraper keeps going; only the kept families are stored.
func TestScrapeGapsWhenTargetDies(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "workqueue_depth", Help: "h"}, []string{"name"})
	depth.WithLabelValues("events").Set(7)
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "advisory_lock_duration", Help: "h", Buckets: []float64{0.1, 1}})
	lat.Observe(0.5)
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "not_kept_total", Help: "h"})
	reg.MustRegister(depth, lat, other)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	var buf syncbuf.Buffer
	// Without keep-alive every scrape dials, so none reuses a connection
	// that outlived Close.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	s := Start(Config{Targets: []string{srv.URL + "/metrics"}, Interval: 10 * time.Millisecond, Client: client}, &buf)
	testwait.Until(t, "3 scrapes", func() bool { ok, _ := count(t, &buf); return ok >= 3 })
	srv.Close()
	ok, gaps := count(t, &buf)
	closed := ok + gaps // scrapes written when Close returned
	testwait.Until(t, "2 gaps", func() bool { _, gaps := count(t, &buf); return gaps >= 2 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	scs, err := Read(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, sc := range scs {
		if sc.Gap() {
			if len(sc.Samples) != 0 {
				t.Errorf("gap %d has samples: %+v", i, sc)
			}
			continue
		}
		if i > closed { // one scrape may have been in flight during Close
			t.Errorf("scrape %d succeeded after the target was closed (%d written then)", i, closed)
		}
		for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes"} {
			if v, ok := sc.Value(name, nil); !ok || (name != "process_cpu_seconds_total" && v <= 0) {
				t.Errorf("scrape %d: %s = %v, %v", i, name, v, ok)
			}
		}
		if v, ok := sc.Value("workqueue_depth", map[string]string{"name": "events"}); !ok || v != 7 {
			t.Errorf("scrape %d: workqueue_depth = %v, %v", i, v, ok)
		}
		if v, ok := sc.Value("advisory_lock_duration_bucket", map[string]string{"le": "1"}); !ok || v != 1 {
			t.Errorf("scrape %d: advisory_lock_duration_bucket{le=1} = %v, %v", i, v, ok)
		}
		if _, ok := sc.Value("not_kept_total", nil); ok {
			t.Errorf("scrape %d kept a family not asked for", i)
		}
	}
}

// A target that answers something other than metrics is a gap with the
// reason, not a failure of the scraper.
func TestScrapeBadAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/garbage" {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte("this is { not metrics\n"))
			return
		}
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for path, want := range map[string]string{"/garbage": "line 1", "/down": "503"} {
		sc := Once(t.Context(), srv.Client(), srv.URL+path, nil)
		if !sc.Gap() || !strings.Contains(sc.Error, want) {
			t.Errorf("%s: %+v, want a gap mentioning %q", path, sc, want)
		}
	}
}

func TestReadNamesBadLine(t *testing.T) {
	t.Parallel()
	in := `{"t":"2026-01-01T00:00:00Z","target":"x","samples":[{"name":"a","value":1}]}` + "\nnot json\n"
	scs, err := Read(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 2") || len(scs) != 1 {
		t.Fatalf("%d scrapes, err %v", len(scs), err)
	}
}

// Read never panics and either returns an error or scrapes that each have
// a target and a time.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"t":"2026-01-01T00:00:00Z","target":"x","samples":[{"name":"a","labels":{"l":"v"},"value":1}]}` + "\n"))
	f.Add([]byte(`{"t":"2026-01-01T00:00:01Z","target":"x","error":"connection refused"}` + "\n\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		scs, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, sc := range scs {
			if sc.Target == "" || sc.Time.IsZero() {
				t.Fatalf("accepted %+v", sc)
			}
		}
	})
}
