package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	dto "github.com/prometheus/client_model/go"

	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
)

// DefaultInterval is how often the run's timeline is cut and the targets'
// metrics are scraped.
const DefaultInterval = time.Second

// startScrape starts scraping the targets' metrics into the run folder
// for the whole run; the returned function stops it and reports a write
// error. A target that does not answer is a gap in the samples, not a
// failure of the run. Stop may be called more than once.
func startScrape(dir string, cfg Config) (stop func() error, err error) {
	if len(cfg.TargetMetrics) == 0 {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, scrape.File))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s := scrape.Start(scrape.Config{Targets: cfg.TargetMetrics, Interval: cfg.Interval}, f)
	return sync.OnceValue(func() error {
		err := s.Stop()
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("replay: results not written: %s: %w", f.Name(), err)
		}
		return nil
	}), nil
}

// Names of the latency histograms in the timeline and in the whole run's
// histograms file; a Publish histogram is named HistPublish + its address.
const (
	HistPublish       = "publish/"
	HistSpecDelivery  = "spec_delivery"
	HistStatusForward = "status_forward"
	HistSendLateness  = "send_lateness"
	HistReplyLateness = "reply_lateness"
)

// startTimeline starts cutting the run into intervals of cfg.Interval in
// the run folder: every latency the run records goes to its interval's
// histogram as well (each Latency's tap), and at each interval's end the
// counters and gauges are read from the run's Prometheus registry, the one
// place the run counts them. The returned function ends the last interval
// at end; it may be called more than once.
func (r *runner) startTimeline(dir string) (stop func(end time.Time) error, err error) {
	f, err := os.Create(filepath.Join(dir, timeline.File))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	// Intervals are cut on the wall clock, whatever clock paces the run.
	rec := timeline.Start(f, gridStart(time.Now(), r.cfg.StartAt, r.cfg.Interval), r.cfg.Interval, r.sampleTimeline)
	tap := func(name string) func(int64) { return func(v int64) { rec.Observe(name, v) } }
	r.specDelivery.tap = tap(HistSpecDelivery)
	r.statusForward.tap = tap(HistStatusForward)
	r.sendLate.tap = tap(HistSendLateness)
	r.replyLate.tap = tap(HistReplyLateness)
	r.publishLat.tap = func(addr string) func(int64) { return tap(HistPublish + addr) }
	var once sync.Once
	var stopErr error
	return func(end time.Time) error {
		once.Do(func() {
			err := rec.Stop(end)
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
			if err != nil {
				stopErr = fmt.Errorf("replay: results not written: %s: %w", f.Name(), err)
			}
		})
		return stopErr
	}, nil
}

// gridStart returns where the first interval starts: now, or with a shared
// start instant (--start-at) the last instant at or before now that lies a
// whole number of intervals from it, so that the shards of one run cut
// their intervals at the same instants and their timelines merge interval
// by interval.
func gridStart(now, startAt time.Time, every time.Duration) time.Time {
	if startAt.IsZero() {
		return now
	}
	k := startAt.Sub(now) / every
	if startAt.Add(-k * every).After(now) {
		k++
	}
	return startAt.Add(-k * every)
}

// sampleTimeline reads the run's counters (cumulative) and gauges for the
// timeline.
func (r *runner) sampleTimeline() (counters, gauges map[string]float64) {
	counters = map[string]float64{
		"specs_sent":    float64(r.specsSent.Load()),
		"statuses_sent": float64(r.statusesSent.Load()),
		"deliveries":    float64(r.specDelivery.Count()),
		"forwards":      float64(r.statusForward.Count()),
	}
	gauges = map[string]float64{}
	// Gather returns what it could collect along with an error; a
	// collector that failed leaves out only its own series.
	fams, _ := r.m.reg.Gather()
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			c, g := m.GetCounter().GetValue(), m.GetGauge().GetValue()
			switch f.GetName() {
			case "cereplay_replay_errors_total":
				counters["errors/"+labelValue(m, "code")] += c
			case "cereplay_replay_events_total":
				counters["outcomes/"+labelValue(m, "outcome")] += c
			case "cereplay_replay_late_sends_total":
				counters["late_sends"] = c
			case "cereplay_replay_reconnects_total":
				counters["reconnects"] = c
			case "process_cpu_seconds_total":
				counters["replayer_cpu_seconds"] = c
			case "cereplay_replay_inflight":
				gauges["inflight"] = g
			case "cereplay_replay_agents_connected":
				gauges["agents_connected"] = g
			case "process_resident_memory_bytes":
				gauges["replayer_rss_bytes"] = g
			}
		}
	}
	return counters, gauges
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// writeHistograms writes the whole run's latency histograms, under the
// names the timeline uses, so that merging the timeline's intervals gives
// exactly these.
func (r *runner) writeHistograms(dir string) error {
	hs := map[string]*hdrhistogram.Histogram{
		HistSpecDelivery:  r.specDelivery.histogram(),
		HistStatusForward: r.statusForward.histogram(),
		HistSendLateness:  r.sendLate.histogram(),
		HistReplyLateness: r.replyLate.histogram(),
	}
	for addr, h := range r.publishLat.histograms() {
		hs[HistPublish+addr] = h
	}
	for name, h := range hs {
		if h.TotalCount() == 0 {
			delete(hs, name)
		}
	}
	enc, err := timeline.EncodeAll(hs)
	if err != nil {
		return fmt.Errorf("replay: results not written: %s: %w", filepath.Join(dir, timeline.HistogramsFile), err)
	}
	return WriteJSON(filepath.Join(dir, timeline.HistogramsFile), enc)
}
