package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/pace"
)

// Files of a run folder.
const (
	RunFile      = "run.json"     // settings, trace digest, start, end, version, rewrites
	SummaryFile  = "summary.json" // counts, rates, percentiles
	OutcomesDir  = "outcomes"     // one outcome record per trace record, in the trace format
	IDMapFile    = "idmap.tsv"    // original<TAB>remapped resource id, with a run id
	duplicateMsg = "already exists"
)

// RunInfo is run.json: what was played, how, when, and what was rewritten.
type RunInfo struct {
	Tool        string            `json:"tool"`
	Version     string            `json:"version,omitempty"`
	Trace       string            `json:"trace"`
	TraceDigest string            `json:"trace_digest"`
	RunID       string            `json:"run_id,omitempty"`
	Mode        string            `json:"mode"`
	Settings    map[string]string `json:"settings"`
	Start       time.Time         `json:"start"`     // when the run began (outcome offsets count from here)
	T0          time.Time         `json:"t0"`        // the schedule's start instant
	Origin      time.Duration     `json:"origin_ns"` // the trace offset played at T0
	End         time.Time         `json:"end"`
	Rewrites    []Rewrite         `json:"rewrites"`
}

// Summary is summary.json, and what Run returns.
type Summary struct {
	TraceDigest string `json:"trace_digest"`
	RunID       string `json:"run_id,omitempty"`
	Mode        string `json:"mode"`
	// Only is the side played (--only), and NotChecked what a run of one
	// side cannot check, since the other side's real clients play it.
	Only        string   `json:"only,omitempty"`
	NotChecked  []string `json:"not_checked,omitempty"`
	WallSeconds float64  `json:"wall_seconds"` // T0 to the end of the settle wait
	SendSeconds float64  `json:"send_seconds"` // T0 to the last send
	// SpecsPerSecond and EventsPerSecond are over WallSeconds, the time
	// the run took: sends that went out in a burst and then waited long
	// for deliveries do not make a high rate.

	// Records is every trace record in scope; each has one outcome.
	// TraceRecords is every record of the trace: more than Records when
	// --limit or --duration cut the trace, or the run stopped early.
	Records      int64 `json:"records"`
	TraceRecords int64 `json:"trace_records"`
	// TraceDamage says where the trace could not be read: the run stopped
	// playing there (and failed).
	TraceDamage *TraceDamage                `json:"trace_damage,omitempty"`
	Outcomes    map[string]int64            `json:"outcomes"`         // by status
	ByFlow      map[string]map[string]int64 `json:"outcomes_by_flow"` // flow -> status -> count
	Errors      map[string]int64            `json:"errors_by_code"`   // failed sends by gRPC code
	// Duplicates are creates the target refused because the resource id
	// already exists (a replay into the same Maestro without a new --run-id).
	Duplicates   int64    `json:"duplicates"`
	DuplicateIDs []string `json:"duplicate_ids,omitempty"` // the first 20

	SpecsSent        int64   `json:"specs_sent"`
	StatusesSent     int64   `json:"statuses_sent"`
	SpecsPerSecond   float64 `json:"specs_per_second"`
	EventsPerSecond  float64 `json:"events_per_second"`
	ConsumersCreated int64   `json:"consumers_created"`
	ConsumersPresent int64   `json:"consumers_present"`

	PublishLatency map[string]LatencySummary `json:"publish_latency"` // per address (port)
	SpecDelivery   LatencySummary            `json:"spec_delivery_latency"`
	StatusForward  LatencySummary            `json:"status_forward_latency"`
	SendLateness   LatencySummary            `json:"send_lateness"`      // spec events
	Schedule       *ScheduleSummary          `json:"schedule,omitempty"` // paced runs
	ReplyLateness  LatencySummary            `json:"reply_lateness"`     // statuses, against delivery + delay

	AgentsPerAddr  map[string]int `json:"agents_per_address"`
	SourcesPerAddr map[string]int `json:"sources_per_address"`
	Reconnects     int64          `json:"reconnects"`
	OutageSeconds  float64        `json:"outage_seconds"` // summed over streams
	ResyncsSent    int64          `json:"resyncs_sent"`
	Heartbeats     int64          `json:"heartbeats"`
	Undecodable    int64          `json:"undecodable"`
	// Unexpected deliveries match nothing this run sent: resync answers,
	// other runs' traffic.
	UnexpectedSpecs    int64 `json:"unexpected_specs"`
	UnexpectedStatuses int64 `json:"unexpected_statuses"`
	DuplicateForwards  int64 `json:"duplicate_forwards"`

	OK       bool     `json:"ok"`
	Problems []string `json:"problems,omitempty"`
}

// TraceDamage is where reading the trace failed (format.CorruptionError).
type TraceDamage struct {
	Record uint64 `json:"record"` // index of the first trace record not played
	File   string `json:"file,omitempty"`
	// Offset counts bytes of File, or of its decompressed stream when
	// InStream is set.
	Offset   int64 `json:"offset"`
	InStream bool  `json:"in_stream,omitempty"`
	// SegmentRecord is the index of the damaged record in its segment,
	// -1 when the damage is not inside one record.
	SegmentRecord int64  `json:"segment_record"`
	Error         string `json:"error"`
}

// ScheduleSummary says whether a paced run kept its schedule: whether its
// spec events left when they were due, so that the run put on the target
// the load it was asked for. A replayer that falls behind (short of CPU,
// or sharing cores with the target) sends less than asked, and every
// latency it measures is of that smaller load: the summary says so
// rather than leave it to a reading of the lateness percentiles. A late
// schedule is not a failure of the run (nothing was lost); --late-drop
// and --allow-dropped make it one.
type ScheduleSummary struct {
	Kept         bool    `json:"kept"`          // at most 1 % of sends later than the bound
	BoundUS      float64 `json:"late_bound_us"` // --late-warn
	Sends        int64   `json:"sends"`
	Late         int64   `json:"late_sends"` // later than the bound
	LateFraction float64 `json:"late_fraction"`
}

// keptFraction is the share of sends that may be later than --late-warn
// with the schedule still kept: the bound is on the 99th percentile.
const keptFraction = 0.01

// ScheduleVerdict judges a paced run (or shards merged) that sent n spec
// events, late of them later than bound; nil when nothing was sent.
func ScheduleVerdict(n, late int64, bound time.Duration) *ScheduleSummary {
	if n == 0 {
		return nil
	}
	s := &ScheduleSummary{BoundUS: float64(bound) / 1e3, Sends: n, Late: late}
	s.LateFraction = float64(s.Late) / float64(n)
	s.Kept = s.LateFraction <= keptFraction
	return s
}

// outbox collects outcomes from every goroutine without blocking them and
// writes them, in the order they were decided, with a format.Writer.
type outbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []format.Record
	closed bool
	err    error
	start  time.Time
	clock  pace.Clock
	m      *metrics

	n        outcomeCounts // under mu; read with counts
	done     chan struct{}
	stopping chan struct{} // closed by close: writeLoop lingers no more
}

// outcomeCounts is what the outbox counts of the outcomes it writes, for
// the summary.
type outcomeCounts struct {
	records  int64
	byStatus map[format.OutcomeStatus]int64
	byFlow   map[string]map[string]int64
	errors   map[string]int64
	dups     int64
	dupIDs   []string
	// noConsumer counts sends refused because their consumer does not
	// exist in the target (see missingConsumer).
	noConsumer int64
	shard      int64 // skipped because another shard plays them
	side       int64 // skipped because the other side's real clients play them (--only)
}

func newOutbox(start time.Time, c pace.Clock, m *metrics) *outbox {
	o := &outbox{start: start, clock: c, m: m, n: outcomeCounts{byStatus: map[format.OutcomeStatus]int64{},
		byFlow: map[string]map[string]int64{}, errors: map[string]int64{}}, done: make(chan struct{}), stopping: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// counts returns a copy of the outbox's counts.
func (o *outbox) counts() outcomeCounts {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.n
	c.byStatus, c.errors = maps.Clone(c.byStatus), maps.Clone(c.errors)
	c.byFlow = make(map[string]map[string]int64, len(o.n.byFlow))
	for f, m := range o.n.byFlow {
		c.byFlow[f] = maps.Clone(m)
	}
	c.dupIDs = slices.Clone(c.dupIDs)
	return c
}

// emit records one outcome. It never blocks on I/O.
func (o *outbox) emit(m recMeta, out format.Outcome) {
	out.Index = m.index
	if out.Lateness < 0 {
		out.Lateness = 0
	}
	r := format.Record{Type: format.TypeOutcome, Offset: o.clock.Now().Sub(o.start), Flow: m.flow, Actor: m.actor,
		ResourceID: m.rid, EventType: m.eventType, Outcome: out}
	o.mu.Lock()
	o.buf = append(o.buf, r)
	o.n.records++
	o.n.byStatus[out.Status]++
	fl := o.n.byFlow[m.flow.String()]
	if fl == nil {
		fl = map[string]int64{}
		o.n.byFlow[m.flow.String()] = fl
	}
	fl[out.Status.String()]++
	if out.Status == format.OutcomeFailed {
		o.n.errors[codes.Code(out.Code).String()]++
		if strings.Contains(out.Note, duplicateMsg) {
			o.n.dups++
			if len(o.n.dupIDs) < 20 {
				o.n.dupIDs = append(o.n.dupIDs, m.rid)
			}
		}
		if missingConsumer(out.Note) {
			o.n.noConsumer++
		}
	}
	if out.Status == format.OutcomeSkipped && out.Note == noteOtherShard {
		o.n.shard++
	}
	if out.Status == format.OutcomeSkipped && out.Note == noteOtherSide {
		o.n.side++
	}
	o.cond.Signal()
	o.mu.Unlock()
	o.m.events.WithLabelValues(m.flow.String(), typeLabel(m.eventType), out.Status.String()).Inc()
}

// missingConsumer says whether a refusal is Maestro's for a resource of a
// consumer it does not know: the foreign key of its resources table (sim
// answers with the same words).
func missingConsumer(note string) bool {
	return strings.Contains(note, "fk_resources_consumers") ||
		strings.Contains(note, "consumer") && strings.Contains(note, "does not exist")
}

const noteOtherShard = "another shard plays this cluster"

// typeLabel is the event type label of a record's outcome: the short
// name of its CloudEvent type, and "subscribe" for the subscribe records,
// which carry no event.
func typeLabel(t string) string {
	if t == "" {
		return "subscribe"
	}
	return maestro.ShortType(t)
}

// outboxLinger is how long writeLoop lets outcomes gather after writing a
// batch. Every emit signals it, and at a paced rate each outcome would
// otherwise wake it (and a thread) on its own; nothing reads the file
// before the run ends, and the counts are kept by emit.
const outboxLinger = 20 * time.Millisecond

// writeLoop writes outcomes until close is called and the buffer is empty.
// Two buffers take turns: emit fills one while the other is written, so
// a steady run appends into room it had before instead of growing a new
// buffer for every batch (copying each outcome again at each doubling).
func (o *outbox) writeLoop(w *format.Writer) {
	defer close(o.done)
	var last time.Duration
	var spare []format.Record
	linger := time.NewTimer(outboxLinger)
	defer linger.Stop()
	for {
		o.mu.Lock()
		for len(o.buf) == 0 && !o.closed {
			o.cond.Wait()
		}
		batch := o.buf
		o.buf = spare
		closed := o.closed
		o.mu.Unlock()
		for i := range batch {
			r := &batch[i]
			if r.Offset < last {
				r.Offset = last // decided concurrently: keep offsets in order
			}
			last = r.Offset
			if err := w.Write(r); err != nil && o.err == nil {
				o.err = fmt.Errorf("replay: results not written: outcomes: %w", err)
			}
		}
		if closed && len(batch) == 0 {
			return
		}
		// Written: the records' strings must not be kept alive. A
		// buffer grown by a burst (the end of a run) is not kept.
		clear(batch)
		spare = nil
		if cap(batch) <= maxSpareOutcomes {
			spare = batch[:0]
		}
		linger.Reset(outboxLinger)
		select {
		case <-linger.C:
		case <-o.stopping:
		}
	}
}

// maxSpareOutcomes bounds the outcome buffer writeLoop keeps for reuse.
const maxSpareOutcomes = 1 << 14

// close stops writeLoop after the remaining outcomes and returns the first
// write error.
func (o *outbox) close() error {
	o.mu.Lock()
	o.closed = true
	o.cond.Signal()
	o.mu.Unlock()
	close(o.stopping)
	<-o.done
	return o.err
}

// failFirst fails the summary with err as its first problem: what went
// wrong writing the results comes before what the run found.
func (s *Summary) failFirst(err error) {
	s.OK = false
	s.Problems = append([]string{strings.TrimPrefix(err.Error(), "replay: ")}, s.Problems...)
}

// WriteJSON writes v as indented JSON to path atomically (a temporary file
// renamed into place, removed if anything fails). Names such as
// "agent>server" stay as they are: no HTML escaping.
func WriteJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("replay: results not written: %s: %w", path, err)
	}
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, buf.Bytes(), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("replay: results not written: %s: %w", path, err)
	}
	return nil
}

// ReadSummary reads the summary.json of a run folder.
func ReadSummary(dir string) (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("replay: %s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return &s, nil
}

// WriteText prints the human summary of a run.
func (s *Summary) WriteText(w io.Writer) error {
	p := &errWriter{w: w}
	verdict := "OK"
	if !s.OK {
		verdict = "FAILED"
	}
	of := ""
	if s.TraceRecords != s.Records {
		of = fmt.Sprintf(" of %d", s.TraceRecords)
	}
	p.printf("replay %s: %s, %d%s records in %.1fs (%.0f specs/s, %.0f events/s)\n",
		verdict, s.Mode, s.Records, of, s.WallSeconds, s.SpecsPerSecond, s.EventsPerSecond)
	if s.Only != "" {
		p.printf("  only the %s side played; not checked: %s\n", s.Only, strings.Join(s.NotChecked, "; "))
	}
	p.printf("  outcomes:")
	for _, k := range sortedKeys(s.Outcomes) {
		p.printf(" %s %d", k, s.Outcomes[k])
	}
	p.printf("\n")
	for _, f := range sortedKeys(s.ByFlow) {
		p.printf("    %-16s", f)
		for _, k := range sortedKeys(s.ByFlow[f]) {
			p.printf(" %s %d", k, s.ByFlow[f][k])
		}
		p.printf("\n")
	}
	if len(s.Errors) > 0 {
		p.printf("  errors:")
		for _, k := range sortedKeys(s.Errors) {
			p.printf(" %s %d", k, s.Errors[k])
		}
		p.printf("\n")
	}
	if s.Duplicates > 0 {
		p.printf("  duplicates: %d creates refused because the resource already exists (replay with a new --run-id); first: %s\n",
			s.Duplicates, strings.Join(s.DuplicateIDs, ", "))
	}
	lat := func(name string, l LatencySummary) {
		if l.Count == 0 {
			return
		}
		p.printf("  %-24s n=%-7d p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", name, l.Count,
			us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	}
	if sc := s.Schedule; sc != nil {
		bound := time.Duration(sc.BoundUS * 1e3).String() // as --late-warn is written
		if sc.Kept {
			p.printf("  schedule kept: %d of %d sends (%.1f%%) left within %s of their due time\n",
				sc.Sends-sc.Late, sc.Sends, 100*(1-sc.LateFraction), bound)
		} else {
			p.printf("  schedule NOT kept: %d of %d sends (%.1f%%) left more than %s late (p99 %s): "+
				"the replayer or the target was short of CPU, so the target got less load than asked "+
				"and the latencies below are of that load (README: Send timing)\n",
				sc.Late, sc.Sends, 100*sc.LateFraction, bound, us(s.SendLateness.P99))
		}
	}
	lat("send lateness", s.SendLateness)
	lat("reply lateness", s.ReplyLateness)
	for _, a := range sortedKeys(s.PublishLatency) {
		lat("publish "+a, s.PublishLatency[a])
	}
	lat("spec delivery", s.SpecDelivery)
	lat("status forward", s.StatusForward)
	p.printf("  agents per address:")
	for _, a := range sortedKeys(s.AgentsPerAddr) {
		p.printf(" %s=%d", a, s.AgentsPerAddr[a])
	}
	p.printf("\n")
	if s.Reconnects > 0 || s.ResyncsSent > 0 {
		p.printf("  reconnects %d (outage %.1fs summed over streams), resyncs sent %d\n", s.Reconnects, s.OutageSeconds, s.ResyncsSent)
	}
	if s.UnexpectedSpecs+s.UnexpectedStatuses+s.DuplicateForwards > 0 {
		p.printf("  unmatched deliveries: %d specs, %d statuses; %d statuses forwarded twice\n",
			s.UnexpectedSpecs, s.UnexpectedStatuses, s.DuplicateForwards)
	}
	for _, pr := range s.Problems {
		p.printf("  problem: %s\n", pr)
	}
	return p.err
}

func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.0fµs", v)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
