// Package scrape samples the Prometheus endpoints of the targets under
// test while a replay runs and stores what it read in the run folder, so
// that a run shows the target's CPU, memory and own series later, without
// access to the target's monitoring.
//
// A scrape that fails is stored as a gap (a line with an error and no
// samples), never as zeros, and never stops the run: a chart of the
// target's memory must not show a crash as a drop to nothing.
package scrape

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cereplay/cereplay/internal/jsonl"
)

// File is the name of the samples file in a run folder.
const File = "target-metrics.jsonl"

// DefaultSeries are the metric families kept from each scrape: the
// process and Go runtime series every Go target exposes, and Maestro's own
// series when present. Families not listed are dropped, so a target with
// thousands of series does not fill the run folder.
var DefaultSeries = []string{
	"process_cpu_seconds_total",
	"process_resident_memory_bytes",
	"go_memstats_heap_inuse_bytes",
	"go_goroutines",
	"grpc_server_processed_total",
	"grpc_server_processed_duration_seconds",
	"cloudevents_received_total",
	"cloudevents_sent_total",
	"resource_first_status_latency_seconds",
	"workqueue_depth",
	"advisory_lock_duration",
}

// Scrape is one line of the samples file: what one target answered at
// one instant. Error set and no samples is a gap.
type Scrape struct {
	Time    time.Time `json:"t"`
	Target  string    `json:"target"`
	Error   string    `json:"error,omitempty"`
	Samples []Sample  `json:"samples,omitempty"`
}

// Gap reports whether the scrape failed.
func (s *Scrape) Gap() bool { return s.Error != "" }

// Sample is one series' value. Histograms and summaries are flattened the
// Prometheus way: name_bucket{le}, name_sum, name_count, name{quantile}.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Value returns the first sample of the scrape named name whose labels
// include want, and whether there was one.
func (s *Scrape) Value(name string, want map[string]string) (float64, bool) {
next:
	for _, x := range s.Samples {
		if x.Name != name {
			continue
		}
		for k, v := range want {
			if x.Labels[k] != v {
				continue next
			}
		}
		return x.Value, true
	}
	return 0, false
}

// Config says what to scrape and how often.
type Config struct {
	Targets  []string      // metrics URLs, e.g. http://maestro:8080/metrics
	Interval time.Duration // between scrapes of a target; default 1s
	Series   []string      // families to keep; nil means DefaultSeries
	Client   *http.Client  // nil means a client with a timeout of Interval, at least 1s
}

// Scraper scrapes every target each interval until Stop.
type Scraper struct {
	cfg    Config
	keep   map[string]bool
	w      *bufio.Writer
	mu     sync.Mutex // w and err
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// Start scrapes each target once at once and then every interval, writing
// one JSON line per scrape to w, until Stop is called.
func Start(cfg Config, w io.Writer) *Scraper {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Series == nil {
		cfg.Series = DefaultSeries
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: max(cfg.Interval, time.Second)}
	}
	s := &Scraper{cfg: cfg, keep: map[string]bool{}, w: bufio.NewWriter(w), done: make(chan struct{})}
	for _, n := range cfg.Series {
		s.keep[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(ctx)
	return s
}

func (s *Scraper) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, target := range s.cfg.Targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.write(Once(ctx, s.cfg.Client, target, s.keep))
			}()
		}
		wg.Wait()
		s.flush() // the file is current while the run goes on
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Scraper) write(sc Scrape) {
	b, err := jsonl.Line(sc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		_, err = s.w.Write(b)
	}
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("scrape: %w", err)
	}
}

func (s *Scraper) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("scrape: %w", err)
	}
}

// Stop ends the scraping (a scrape in progress is cut short and recorded
// as a gap) and flushes the samples; it returns the first write error.
func (s *Scraper) Stop() error {
	s.cancel()
	<-s.done
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Once scrapes one target and keeps the families in keep (all when keep
// is nil). A failure of any kind is returned as a gap.
func Once(ctx context.Context, c *http.Client, target string, keep map[string]bool) Scrape {
	sc := Scrape{Time: time.Now().UTC(), Target: target}
	samples, err := fetch(ctx, c, target, keep)
	if err != nil {
		sc.Error = err.Error()
		return sc
	}
	sc.Samples = samples
	return sc
}

func fetch(ctx context.Context, c *http.Client, target string, keep map[string]bool) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", target, resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		if keep == nil || keep[mf.GetName()] {
			fams = append(fams, mf)
		}
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, fams...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	out := make([]Sample, 0, len(vec))
	for _, v := range vec {
		f := float64(v.Value)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue // a summary with no observations; JSON has no NaN
		}
		x := Sample{Name: string(v.Metric[model.MetricNameLabel]), Value: f}
		for k, lv := range v.Metric {
			if k == model.MetricNameLabel {
				continue
			}
			if x.Labels == nil {
				x.Labels = map[string]string{}
			}
			x.Labels[string(k)] = string(lv)
		}
		out = append(out, x)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Read reads a samples file. A line that is not a scrape is an error that
// names the line.
func Read(r io.Reader) ([]Scrape, error) {
	var out []Scrape
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var s Scrape
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return out, fmt.Errorf("scrape: %s line %d: %w", File, n, err)
		}
		if s.Target == "" || s.Time.IsZero() {
			return out, fmt.Errorf("scrape: %s line %d: no target or time", File, n)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("scrape: %s: %w", File, err)
	}
	return out, nil
}

// ReadFile reads the samples file at path; a missing file is no samples.
func ReadFile(path string) ([]Scrape, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer f.Close()
	return Read(f)
}
