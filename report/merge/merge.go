// Package merge makes one run folder from the run folders of the shards of
// a sharded replay (replay --shard i/N with one --start-at), so that a
// report or a comparison reads the sharded run like any other.
//
// Everything that can be merged exactly is: every trace record's outcome
// once, the counts, and every latency histogram (HDR histograms of one
// shape add up bin by bin). The timeline's intervals are placed on one grid
// (see RUN.md).
package merge

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/report/scrape"
	"github.com/cereplay/cereplay/report/timeline"
)

// Options say how shards are merged.
type Options struct {
	// AllowPartial merges shards even when some of the N are missing; the
	// merged summary then names them as a problem.
	AllowPartial bool
	// Version is the merging tool's, for run.json and the outcomes'
	// provenance.
	Version string
}

// shard is one run folder to merge.
type shard struct {
	dir   string
	info  replay.RunInfo
	sum   *replay.Summary
	shard replay.Shard
}

// Merge reads the run folders dirs, checks they are shards of one sharded
// run (same trace digest, same T0, distinct shard indexes of one count,
// none missing unless opts.AllowPartial) and writes the merged run to out.
// It returns the merged summary.
func Merge(dirs []string, out string, opts Options) (*replay.Summary, error) {
	shards, missing, err := load(dirs, opts.AllowPartial)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(out, replay.RunFile)); err == nil {
		return nil, fmt.Errorf("merge: %s already holds a run (choose another --out)", out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	recs, err := mergeOutcomes(shards, out, opts)
	if err != nil {
		return nil, err
	}
	hists := map[string]*hdrhistogram.Histogram{}
	for _, s := range shards {
		hs, err := timeline.ReadHistograms(filepath.Join(s.dir, timeline.HistogramsFile))
		if err != nil {
			return nil, fmt.Errorf("merge: run %s: %w", s.dir, err)
		}
		for name, h := range hs {
			if hists[name] == nil {
				hists[name] = timeline.NewHistogram()
			}
			hists[name].Merge(h)
		}
	}
	enc, err := timeline.EncodeAll(hists)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if err := replay.WriteJSON(filepath.Join(out, timeline.HistogramsFile), enc); err != nil {
		return nil, err
	}
	if err := mergeTimelines(shards, out); err != nil {
		return nil, err
	}
	if err := concatFiles(shards, out, replay.IDMapFile, true); err != nil {
		return nil, err
	}
	// Every shard scraped the same targets: one shard's samples are the
	// targets' own, the others' repeat them.
	if err := concatFiles(shards[:1], out, scrape.File, false); err != nil {
		return nil, err
	}
	sum := summarize(shards, recs, hists, missing)
	info := runInfo(shards, opts)
	if err := replay.WriteJSON(filepath.Join(out, replay.RunFile), info); err != nil {
		return nil, err
	}
	if err := replay.WriteJSON(filepath.Join(out, replay.SummaryFile), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// load reads every run's run.json and summary.json and checks they are
// shards of one run. missing lists the shard indexes not given.
func load(dirs []string, allowPartial bool) ([]*shard, []string, error) {
	if len(dirs) == 0 {
		return nil, nil, errors.New("merge: no run to merge")
	}
	var shards []*shard
	for _, dir := range dirs {
		s := &shard{dir: dir}
		b, err := os.ReadFile(filepath.Join(dir, replay.RunFile))
		if err != nil {
			return nil, nil, fmt.Errorf("merge: run %s: %w", dir, err)
		}
		if err := json.Unmarshal(b, &s.info); err != nil {
			return nil, nil, fmt.Errorf("merge: run %s: %s: %w", dir, replay.RunFile, err)
		}
		if s.sum, err = replay.ReadSummary(dir); err != nil {
			return nil, nil, fmt.Errorf("merge: run %s: %w", dir, err)
		}
		if s.shard, err = replay.ParseShard(s.info.Settings["shard"]); err != nil {
			return nil, nil, fmt.Errorf("merge: run %s: %w", dir, err)
		}
		if s.shard.Count == 0 {
			s.shard.Count = 1
		}
		shards = append(shards, s)
	}
	first := shards[0]
	for _, s := range shards[1:] {
		switch {
		case s.info.TraceDigest != first.info.TraceDigest:
			return nil, nil, fmt.Errorf("merge: run %s replayed trace %s, run %s trace %s: shards of one run play one trace",
				s.dir, s.info.TraceDigest, first.dir, first.info.TraceDigest)
		case !s.info.T0.Equal(first.info.T0):
			return nil, nil, fmt.Errorf("merge: run %s started its schedule at %s, run %s at %s: shards of one run share one --start-at",
				s.dir, s.info.T0.Format(time.RFC3339Nano), first.dir, first.info.T0.Format(time.RFC3339Nano))
		case s.shard.Count != first.shard.Count:
			return nil, nil, fmt.Errorf("merge: run %s is one of %d shards, run %s one of %d", s.dir, s.shard.Count, first.dir, first.shard.Count)
		}
	}
	slices.SortStableFunc(shards, func(a, b *shard) int { return cmp.Compare(a.shard.Index, b.shard.Index) })
	for i := 1; i < len(shards); i++ {
		if a, b := shards[i-1], shards[i]; a.shard.Index == b.shard.Index {
			return nil, nil, fmt.Errorf("merge: runs %s and %s are both shard %d/%d", a.dir, b.dir, a.shard.Index, a.shard.Count)
		}
	}
	var missing []string
	for i, j := 0, 0; i < first.shard.Count; i++ {
		if j < len(shards) && shards[j].shard.Index == i {
			j++
			continue
		}
		missing = append(missing, fmt.Sprintf("%d/%d", i, first.shard.Count))
	}
	if len(missing) > 0 && !allowPartial {
		return nil, nil, fmt.Errorf("merge: shard %s missing from runs %s (--allow-partial merges without it)",
			strings.Join(missing, ", "), strings.Join(dirs, ", "))
	}
	return shards, missing, nil
}

// mergeOutcomes writes the merged outcomes trace: one outcome per trace
// record, the one of the shard that played it (a record every shard plays,
// a source's subscribe, from the lowest shard), in the order they were
// decided, on the clock of the earliest shard's start. It returns them.
func mergeOutcomes(shards []*shard, out string, opts Options) ([]format.Record, error) {
	type chosen struct {
		rec format.Record
		at  time.Time
	}
	byIndex := map[uint64]chosen{}
	for _, s := range shards {
		rd, err := format.Open(filepath.Join(s.dir, replay.OutcomesDir))
		if err != nil {
			return nil, fmt.Errorf("merge: run %s: %w", s.dir, err)
		}
		for {
			rec, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return nil, fmt.Errorf("merge: run %s: %w", s.dir, err)
			}
			idx := rec.Outcome.Index
			prev, seen := byIndex[idx]
			if seen && (prev.rec.Outcome.Status != format.OutcomeSkipped || rec.Outcome.Status == format.OutcomeSkipped) {
				continue
			}
			c := *rec
			c.Data = bytes.Clone(rec.Data)
			byIndex[idx] = chosen{c, s.info.Start.Add(rec.Offset)}
		}
		rd.Close()
	}
	all := slices.Collect(maps.Values(byIndex))
	slices.SortFunc(all, func(a, b chosen) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.rec.Outcome.Index, b.rec.Outcome.Index))
	})
	start := shards[0].info.Start
	for _, s := range shards {
		if s.info.Start.Before(start) {
			start = s.info.Start
		}
	}
	w, err := format.Create(filepath.Join(out, replay.OutcomesDir), format.WriterOptions{Workers: 1, Provenance: format.Provenance{
		Tool: "cereplay merge", Version: opts.Version, Command: "merge",
		Params:    map[string]string{"shards": strconv.Itoa(len(shards))},
		Upstreams: []string{shards[0].info.TraceDigest},
	}})
	if err != nil {
		return nil, fmt.Errorf("merge: outcomes: %w", err)
	}
	recs := make([]format.Record, len(all))
	for i, c := range all {
		recs[i] = c.rec
		recs[i].Offset = max(0, c.at.Sub(start))
		if i > 0 && recs[i].Offset < recs[i-1].Offset {
			recs[i].Offset = recs[i-1].Offset
		}
		if err := w.Write(&recs[i]); err != nil {
			w.Abort()
			return nil, fmt.Errorf("merge: outcomes: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("merge: outcomes: %w", err)
	}
	return recs, nil
}

// summarize builds the merged summary: counts from the merged outcomes,
// sums of the shards' counters, latencies from the merged histograms.
func summarize(shards []*shard, recs []format.Record, hists map[string]*hdrhistogram.Histogram, missing []string) *replay.Summary {
	first := shards[0].sum
	s := &replay.Summary{
		TraceDigest:    first.TraceDigest,
		RunID:          first.RunID,
		Mode:           first.Mode,
		Records:        int64(len(recs)),
		Outcomes:       map[string]int64{},
		ByFlow:         map[string]map[string]int64{},
		Errors:         map[string]int64{},
		PublishLatency: map[string]replay.LatencySummary{},
		AgentsPerAddr:  map[string]int{},
		SourcesPerAddr: map[string]int{},
		SpecDelivery:   replay.HistogramSummary(hists[replay.HistSpecDelivery]),
		StatusForward:  replay.HistogramSummary(hists[replay.HistStatusForward]),
		SendLateness:   replay.HistogramSummary(hists[replay.HistSendLateness]),
		ReplyLateness:  replay.HistogramSummary(hists[replay.HistReplyLateness]),
		OK:             len(missing) == 0,
	}
	for name, h := range hists {
		if addr, ok := strings.CutPrefix(name, replay.HistPublish); ok {
			s.PublishLatency[addr] = replay.HistogramSummary(h)
		}
	}
	for i := range recs {
		st, fl := recs[i].Outcome.Status.String(), recs[i].Flow.String()
		s.Outcomes[st]++
		if s.ByFlow[fl] == nil {
			s.ByFlow[fl] = map[string]int64{}
		}
		s.ByFlow[fl][st]++
	}
	var sends, late int64
	var bound float64
	for _, sh := range shards {
		x := sh.sum
		s.TraceRecords = max(s.TraceRecords, x.TraceRecords)
		if s.TraceDamage == nil {
			s.TraceDamage = x.TraceDamage
		}
		s.WallSeconds = max(s.WallSeconds, x.WallSeconds)
		s.SendSeconds = max(s.SendSeconds, x.SendSeconds)
		addCounts(s.Errors, x.Errors)
		s.Duplicates += x.Duplicates
		for _, id := range x.DuplicateIDs {
			if len(s.DuplicateIDs) < 20 {
				s.DuplicateIDs = append(s.DuplicateIDs, id)
			}
		}
		s.SpecsSent += x.SpecsSent
		s.StatusesSent += x.StatusesSent
		s.ConsumersCreated += x.ConsumersCreated
		s.ConsumersPresent += x.ConsumersPresent
		addCounts(s.AgentsPerAddr, x.AgentsPerAddr)
		addCounts(s.SourcesPerAddr, x.SourcesPerAddr)
		s.Reconnects += x.Reconnects
		s.OutageSeconds += x.OutageSeconds
		s.ResyncsSent += x.ResyncsSent
		s.Heartbeats += x.Heartbeats
		s.Undecodable += x.Undecodable
		s.UnexpectedSpecs += x.UnexpectedSpecs
		s.UnexpectedStatuses += x.UnexpectedStatuses
		s.DuplicateForwards += x.DuplicateForwards
		if x.Schedule != nil {
			sends += x.Schedule.Sends
			late += x.Schedule.Late
			bound = x.Schedule.BoundUS
		}
		for _, p := range x.Problems {
			s.Problems = append(s.Problems, fmt.Sprintf("shard %d/%d (%s): %s", sh.shard.Index, sh.shard.Count, sh.dir, p))
		}
		s.OK = s.OK && x.OK
	}
	if sends > 0 {
		s.Schedule = replay.ScheduleVerdict(sends, late, time.Duration(bound*1e3))
	}
	if s.WallSeconds > 0 {
		s.SpecsPerSecond = float64(s.SpecsSent) / s.WallSeconds
		s.EventsPerSecond = float64(s.SpecsSent+s.StatusesSent) / s.WallSeconds
	}
	if len(missing) > 0 {
		s.Problems = append([]string{fmt.Sprintf("shard %s missing: their clusters were not played", strings.Join(missing, ", "))}, s.Problems...)
	}
	return s
}

func addCounts[N int | int64 | float64](dst, src map[string]N) {
	for k, v := range src {
		dst[k] += v
	}
}

// runInfo is the merged run.json: the first shard's, over the span of all
// of them, with the shard settings replaced by the list of shards.
func runInfo(shards []*shard, opts Options) replay.RunInfo {
	info := shards[0].info
	info.Settings = maps.Clone(info.Settings)
	if info.Settings == nil {
		info.Settings = map[string]string{}
	}
	delete(info.Settings, "shard")
	delete(info.Settings, "shard_plan")
	var dirs []string
	for _, s := range shards {
		dirs = append(dirs, s.dir)
		if s.info.Start.Before(info.Start) {
			info.Start = s.info.Start
		}
		if s.info.End.After(info.End) {
			info.End = s.info.End
		}
	}
	info.Settings["merged_shards"] = fmt.Sprintf("%d of %d", len(shards), shards[0].shard.Count)
	info.Settings["merged_runs"] = strings.Join(dirs, ",")
	info.Tool, info.Version = "cereplay merge", opts.Version
	return info
}

// mergeTimelines writes one timeline from the shards': intervals on one
// grid of the shards' step from the earliest start, each shard interval at
// the grid step its start is nearest to. Counters and histograms add up;
// gauges add up over shards (agents connected, in flight, RSS of all the
// replayers), each shard's last value in the step.
func mergeTimelines(shards []*shard, out string) error {
	type bin struct {
		counters map[string]float64
		gauges   map[int]map[string]float64 // per shard
		hists    map[string]*hdrhistogram.Histogram
	}
	var runs [][]timeline.Interval
	var start time.Time
	var step time.Duration
	for _, s := range shards {
		ivs, err := timeline.ReadFile(filepath.Join(s.dir, timeline.File))
		if err != nil {
			return fmt.Errorf("merge: run %s: %w", s.dir, err)
		}
		runs = append(runs, ivs)
		if len(ivs) == 0 {
			continue
		}
		if start.IsZero() || ivs[0].Start.Before(start) {
			start = ivs[0].Start
		}
		if step == 0 {
			step, _ = time.ParseDuration(s.info.Settings["interval"])
		}
		if step <= 0 && len(ivs) > 1 {
			step = ivs[0].End.Sub(ivs[0].Start)
		}
	}
	if step <= 0 {
		step = time.Second
	}
	bins := map[int]*bin{}
	for si, ivs := range runs {
		for i := range ivs {
			iv := &ivs[i]
			k := int(math.Round(float64(iv.Start.Sub(start)) / float64(step)))
			b := bins[k]
			if b == nil {
				b = &bin{counters: map[string]float64{}, gauges: map[int]map[string]float64{}, hists: map[string]*hdrhistogram.Histogram{}}
				bins[k] = b
			}
			addCounts(b.counters, iv.Counters)
			b.gauges[si] = iv.Gauges
			for name := range iv.Histograms {
				h, err := iv.Histogram(name)
				if err != nil {
					return fmt.Errorf("merge: run %s: %s: interval %d: %w", shards[si].dir, timeline.File, iv.Index, err)
				}
				if b.hists[name] == nil {
					b.hists[name] = timeline.NewHistogram()
				}
				b.hists[name].Merge(h)
			}
		}
	}
	f, err := os.Create(filepath.Join(out, timeline.File))
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	keys := slices.Sorted(maps.Keys(bins))
	var henc timeline.Encoder
	if len(keys) > 0 {
		for k := keys[0]; k <= keys[len(keys)-1]; k++ {
			iv := timeline.Interval{Index: k - keys[0], Start: start.Add(time.Duration(k) * step), End: start.Add(time.Duration(k+1) * step)}
			if b := bins[k]; b != nil {
				iv.Counters = b.counters
				iv.Gauges = map[string]float64{}
				for _, g := range b.gauges {
					addCounts(iv.Gauges, g)
				}
				hs, err := henc.EncodeAll(b.hists)
				if err != nil {
					return fmt.Errorf("merge: %w", err)
				}
				iv.Histograms = hs
			}
			if err := enc.Encode(iv); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return f.Close()
}

// concatFiles writes the named file of every shard that has one, one
// after the other, into out; with all false, the first one found only.
func concatFiles(shards []*shard, out, name string, all bool) error {
	var buf bytes.Buffer
	for _, s := range shards {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("merge: run %s: %w", s.dir, err)
		}
		buf.Write(b)
		if !all {
			break
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return nil
}
