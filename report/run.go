package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
)

// Run is everything a run folder holds that the report and compare use.
type Run struct {
	Dir        string
	Name       string // the folder's base name, unless two runs share it
	Info       replay.RunInfo
	Summary    *replay.Summary
	Timeline   []timeline.Interval
	Histograms map[string]*hdrhistogram.Histogram // the whole run's
	Targets    []scrape.Scrape
}

// ErrNotARun marks a folder that holds no run.
var ErrNotARun = errors.New("report: not a run folder")

// Load reads a run folder. The timeline, histograms and target samples are
// optional (runs made before them, runs without --target-metrics); run.json
// and summary.json are not.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir, Name: filepath.Base(filepath.Clean(dir))}
	b, err := os.ReadFile(filepath.Join(dir, replay.RunFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNotARun, dir, replay.RunFile)
	}
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(b, &r.Info); err != nil {
		return nil, fmt.Errorf("report: %s: %w", filepath.Join(dir, replay.RunFile), err)
	}
	if r.Summary, err = replay.ReadSummary(dir); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if r.Timeline, err = timeline.ReadFile(filepath.Join(dir, timeline.File)); err != nil {
		return nil, fmt.Errorf("report: %s: %w", dir, err)
	}
	if r.Histograms, err = timeline.ReadHistograms(filepath.Join(dir, timeline.HistogramsFile)); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if r.Targets, err = scrape.ReadFile(filepath.Join(dir, scrape.File)); err != nil {
		return nil, fmt.Errorf("report: %s: %w", dir, err)
	}
	return r, nil
}

// LoadAll reads several run folders and names them by their base names,
// or by their paths where base names repeat.
func LoadAll(dirs []string) ([]*Run, error) {
	runs := make([]*Run, 0, len(dirs))
	seen := map[string]int{}
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			return nil, err
		}
		seen[r.Name]++
		runs = append(runs, r)
	}
	for _, r := range runs {
		if seen[r.Name] > 1 {
			r.Name = filepath.Clean(r.Dir)
		}
	}
	return runs, nil
}

// Latency names the latencies the report and compare know, and which of a
// run's histograms make each: Publish is every address's Publish merged.
var latencies = []struct {
	Key, Title string
	match      func(string) bool
}{
	{"publish", "Publish latency", func(n string) bool { return strings.HasPrefix(n, replay.HistPublish) }},
	{"spec_delivery", "Spec delivery latency (publish to agent)", func(n string) bool { return n == replay.HistSpecDelivery }},
	{"status_forward", "Status forward latency (agent to source)", func(n string) bool { return n == replay.HistStatusForward }},
	{"send_lateness", "Send lateness (paced runs)", func(n string) bool { return n == replay.HistSendLateness }},
}

// wholeHistogram merges the run's whole-run histograms that match.
func (r *Run) wholeHistogram(match func(string) bool) *hdrhistogram.Histogram {
	h := timeline.NewHistogram()
	for name, x := range r.Histograms {
		if match(name) {
			h.Merge(x)
		}
	}
	return h
}
