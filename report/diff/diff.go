// Package diff aligns two traces record by record and says what differs,
// leaving out what a replay legitimately changes. A replay's outcome
// folder is a trace too, so two runs compare the same way.
//
// Records are aligned by record type (event or outcome), flow, actor,
// resource id, event type and occurrence (the n-th record with those),
// never by position, so an inserted or reordered record shows as itself
// and not as a shift of everything after it. Both traces are streamed side by side and each
// record is reduced to a hash of what is compared; a record waits, as its
// key and hash, only until its partner turns up, so traces of any size
// diff in little memory when they are alike. The few records a Result
// details are read again at the end.
package diff

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// DefaultMaxDiffs is how many differences a Result details by default.
const DefaultMaxDiffs = 20

// DefaultIgnore names what a replay legitimately changes and is never
// compared: the CloudEvent id and time, the status sequence id and
// resource version (rewritten at send time, see run.json's rewrites), a
// record's offset and recorded delay, and an outcome's position and
// timings.
var DefaultIgnore = []string{
	"id", maestro.AttrTime, maestro.AttrSequenceID, maestro.AttrResourceVersion,
	"offset", "delay",
	"outcome.index", "outcome.lateness", "outcome.latency", "outcome.delivery",
}

// Options tune a diff.
type Options struct {
	// Ignore adds fields not to compare: a CloudEvent field or attribute
	// ("source", "ce-statushash"), a record field ("trigger",
	// "outcome.note"), or a JSON path in the event data
	// ("data.status.conditions" leaves out that member and all below it,
	// in every element of any array on the way).
	Ignore []string
	// RunID is the --run-id B was replayed with: A's resource ids, and
	// the ids in its ce-resourceid and ce-metadata, are mapped the way
	// that replay mapped them before they are compared.
	RunID string
	// MaxDiffs is how many differences to detail: 0 means
	// DefaultMaxDiffs, a negative number none. Counts are always whole.
	MaxDiffs int
}

// Kinds of Difference.
const (
	OnlyA   = "only_a"
	OnlyB   = "only_b"
	Changed = "changed"
)

// Key is where a record sits in a trace, independent of its position.
type Key struct {
	Record     string `json:"record"` // "event", or "outcome" (a replay's, or a recorder's)
	Flow       string `json:"flow"`
	Actor      string `json:"actor"`
	ResourceID string `json:"resource_id,omitempty"`
	EventType  string `json:"event_type,omitempty"`
	// Occurrence counts from 1: the n-th record with this record type,
	// flow, actor, resource id and event type.
	Occurrence int `json:"occurrence"`
}

// Field is one field that differs, with both values as text (cut to a
// readable length); a field absent from one side is "<absent>".
type Field struct {
	Name string `json:"field"`
	A    string `json:"a"`
	B    string `json:"b"`
}

// Difference is one record that is only in A, only in B, or in both and
// changed. IndexA and IndexB are the record's positions (from 0), -1 on
// the side it is missing from.
type Difference struct {
	Kind   string  `json:"kind"`
	Key    Key     `json:"key"`
	IndexA int64   `json:"index_a"`
	IndexB int64   `json:"index_b"`
	Fields []Field `json:"fields,omitempty"`
}

// Group counts the differences of one record type, flow and event type.
type Group struct {
	Record  string `json:"record"`
	Flow    string `json:"flow"`
	Type    string `json:"type"`
	OnlyA   int64  `json:"only_a"`
	OnlyB   int64  `json:"only_b"`
	Changed int64  `json:"changed"`
}

// Side describes one of the two traces.
type Side struct {
	Path    string `json:"path"`
	Digest  string `json:"digest"`
	Records int64  `json:"records"`
}

// Result is what Diff found. Same reports whether nothing differs.
type Result struct {
	A       Side         `json:"a"`
	B       Side         `json:"b"`
	RunID   string       `json:"run_id,omitempty"`
	Ignored []string     `json:"ignored"`
	Equal   int64        `json:"equal"`
	OnlyA   int64        `json:"only_a"`
	OnlyB   int64        `json:"only_b"`
	Changed int64        `json:"changed"`
	Groups  []Group      `json:"by_flow_and_type"`
	Diffs   []Difference `json:"differences"`
}

// Same reports whether the traces hold the same records, but for what
// was ignored.
func (r *Result) Same() bool { return r.OnlyA == 0 && r.OnlyB == 0 && r.Changed == 0 }

// runFile and outcomesDir name a replay's run folder (package replay):
// Open reads the outcomes of a run folder.
const (
	runFile     = "run.json"
	outcomesDir = "outcomes"
)

// TraceDir returns the trace to read for path: path itself (a trace
// folder, a packed file or its URL), or the outcome trace of a replay's
// run folder.
func TraceDir(path string) string {
	if _, err := os.Stat(filepath.Join(path, format.ManifestName)); err == nil {
		return path
	}
	if _, err := os.Stat(filepath.Join(path, runFile)); err == nil {
		return filepath.Join(path, outcomesDir)
	}
	return path
}

// RunIDOf reads the run id a replay used from its run folder's run.json
// ("" when it had none).
func RunIDOf(runDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(runDir, runFile))
	if err != nil {
		return "", fmt.Errorf("diff: run folder: %w", err)
	}
	var info struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return "", fmt.Errorf("diff: %s: %w", filepath.Join(runDir, runFile), err)
	}
	return info.RunID, nil
}

// Diff compares the traces at a and b: trace folders, packed files or
// their URLs (anything format.OpenSource reads), or run folders, whose
// outcomes are compared.
func Diff(ctx context.Context, a, b string, opt Options) (*Result, error) {
	d, err := newDiffer(opt)
	if err != nil {
		return nil, err
	}
	ra, err := format.OpenSource(ctx, TraceDir(a), format.OpenOptions{})
	if err != nil {
		return nil, fmt.Errorf("diff: A: %w", err)
	}
	defer ra.Close()
	rb, err := format.OpenSource(ctx, TraceDir(b), format.OpenOptions{})
	if err != nil {
		return nil, fmt.Errorf("diff: B: %w", err)
	}
	defer rb.Close()
	d.res.A = Side{Path: a, Digest: ra.Manifest().Digest}
	d.res.B = Side{Path: b, Digest: rb.Manifest().Digest}
	sa, sb := newSide(TraceDir(a), true), newSide(TraceDir(b), false)
	stop := make(chan struct{})
	defer close(stop)
	fa, fb := d.feed(ra, sa, stop), d.feed(rb, sb, stop)
	// The two traces are taken a batch at a time each, so records that
	// match meet soon and few wait.
	for fa != nil || fb != nil {
		for _, f := range []*<-chan batch{&fa, &fb} {
			if *f == nil {
				continue
			}
			bt, ok := <-*f
			if !ok {
				*f = nil
				continue
			}
			s, other := sa, sb
			if f == &fb {
				s, other = sb, sa
			}
			for i := range bt.items {
				d.take(s, other, &bt.items[i])
			}
			if bt.err != nil {
				return nil, fmt.Errorf("diff: %s: %w", s.name(), bt.err)
			}
		}
	}
	d.res.A.Records, d.res.B.Records = sa.index, sb.index
	d.leftovers(sa, sb)
	if err := d.detail(ctx, sa, sb); err != nil {
		return nil, err
	}
	d.finish()
	return &d.res, nil
}

// alignKey identifies a record across the two traces: the hash of its
// flow, actor, resource id and event type, and its occurrence.
type alignKey struct {
	k   uint64
	occ uint32
}

// entry is a record waiting for its partner.
type entry struct {
	index int64
	rtype format.RecordType
	flow  format.Flow
	actor string
	rid   string
	typ   string
	occ   uint32
	sum   uint64
}

// side is one trace being aligned.
type side struct {
	dir     string
	isA     bool
	index   int64
	occ     map[uint64]uint32
	answers []uint64 // by index: what a trigger pointing there is compared as
	pending map[alignKey]*entry
}

func newSide(dir string, isA bool) *side {
	return &side{dir: dir, isA: isA, occ: map[uint64]uint32{}, pending: map[alignKey]*entry{}}
}

// item is a record read and hashed, ready to be aligned: what the
// alignment needs, copied out of the record (the Reader reuses its
// buffers; the strings are the Reader's own copies).
type item struct {
	rtype      format.RecordType
	flow       format.Flow
	actor      string
	rid        string
	typ        string
	hasTrigger bool
	trigger    uint64
	kh         uint64 // hash of flow, actor, resource id (mapped) and event type
	th         uint64 // hash of resource id (mapped) and event type, for triggers
	sum        uint64 // hash of what is compared, but for the trigger
}

// batch is a run of items of one trace; err ends the trace.
type batch struct {
	items []item
	err   error
}

// batchSize is how many records a feeder hands over at once.
const batchSize = 256

// feed reads a trace and hashes its records on a goroutine of its own, so
// the two traces are read and hashed in parallel with the alignment.
func (d *differ) feed(r *format.Reader, s *side, stop <-chan struct{}) <-chan batch {
	r.ReuseBuffers()
	ch := make(chan batch, 4)
	go func() {
		defer close(ch)
		items := make([]item, 0, batchSize)
		var index int64
		send := func(err error) bool {
			select {
			case ch <- batch{items: items, err: err}:
				items = make([]item, 0, batchSize)
				return true
			case <-stop:
				return false
			}
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				send(nil)
				return
			}
			if err == nil {
				it := item{rtype: rec.Type, flow: rec.Flow, actor: rec.Actor, rid: rec.ResourceID, typ: rec.EventType,
					hasTrigger: rec.HasTrigger, trigger: rec.Trigger}
				rid := rec.ResourceID
				if s.isA {
					rid = d.ids.ID(rid)
				}
				it.kh = d.keyHash(rec.Type, rec.Flow, rec.Actor, rid, rec.EventType)
				it.th = d.keyHash(rec.Type, 0, "", rid, rec.EventType)
				if it.sum, err = d.sum(s.isA, rec); err != nil {
					err = fmt.Errorf("record %d: %w", index, err)
				}
				if err == nil {
					items = append(items, it)
					index++
				}
			}
			if err != nil {
				send(err)
				return
			}
			if len(items) == batchSize && !send(nil) {
				return
			}
		}
	}()
	return ch
}

func (s *side) name() string {
	if s.isA {
		return "A"
	}
	return "B"
}

// differ holds the comparison rules and the counts.
type differ struct {
	opt       Options
	ignore    map[string]bool
	dataPaths [][]string // ignored JSON paths inside the data, without "data."
	ids       *maestro.RunIDs
	seed      maphash.Seed
	groups    map[[3]string]*Group
	res       Result
}

func newDiffer(opt Options) (*differ, error) {
	if opt.MaxDiffs == 0 {
		opt.MaxDiffs = DefaultMaxDiffs
	}
	d := &differ{opt: opt, ignore: map[string]bool{}, ids: maestro.NewRunIDs(opt.RunID),
		seed: maphash.MakeSeed(), groups: map[[3]string]*Group{}}
	for _, f := range append(slices.Clone(DefaultIgnore), opt.Ignore...) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "data" || strings.HasPrefix(f, "data.") {
			path := strings.Split(strings.TrimPrefix(strings.TrimPrefix(f, "data"), "."), ".")
			if slices.Contains(path, "") {
				if f != "data" {
					return nil, fmt.Errorf("diff: --ignore %q: a data path is data.member.member...", f)
				}
				d.ignore["data"] = true
			} else {
				d.dataPaths = append(d.dataPaths, path)
			}
		} else {
			d.ignore[f] = true
		}
		if !slices.Contains(d.res.Ignored, f) {
			d.res.Ignored = append(d.res.Ignored, f)
		}
	}
	d.res.RunID = opt.RunID
	return d, nil
}

// take aligns one record of s: with its partner waiting in other, or it
// waits for it.
func (d *differ) take(s, other *side, it *item) {
	index := s.index
	s.index++
	occ := s.occ[it.kh]
	s.occ[it.kh] = occ + 1
	ak := alignKey{it.kh, occ}
	s.answers = append(s.answers, it.th^uint64(occ)*0x9e3779b97f4a7c15)
	sum := it.sum
	if it.hasTrigger && !d.ignore["trigger"] {
		var b [binary.MaxVarintLen64]byte
		sum += d.part("trigger", binary.AppendUvarint(b[:0], triggerKey(s, it.trigger)))
	}
	if e, ok := other.pending[ak]; ok {
		delete(other.pending, ak)
		if e.sum == sum {
			d.res.Equal++
			return
		}
		ia, ib := index, e.index
		if !s.isA {
			ia, ib = e.index, index
		}
		d.changed(e, ia, ib)
		return
	}
	s.pending[ak] = &entry{index: index, rtype: it.rtype, flow: it.flow, actor: it.actor, rid: it.rid, typ: it.typ, occ: occ, sum: sum}
}

// triggerKey is what a trigger is compared as: the resource id, event
// type and occurrence of the record it answers, not its index, so a
// record inserted before that one does not change it, and a status that
// answers a spec's delivery to its agent (as a recording links it) equals
// one that answers the spec itself (as a generated trace does). A trigger
// outside the trace is compared by its index.
func triggerKey(s *side, trigger uint64) uint64 {
	if trigger < uint64(len(s.answers)) {
		return s.answers[trigger]
	}
	return 1<<63 | trigger
}

// changed counts a changed record, and keeps it to detail while MaxDiffs
// allows (detail fills in its fields); e is the one that waited.
func (d *differ) changed(e *entry, ia, ib int64) {
	d.res.Changed++
	d.group(e).Changed++
	if len(d.res.Diffs) < d.opt.MaxDiffs {
		d.res.Diffs = append(d.res.Diffs, Difference{Kind: Changed, Key: keyOf(e), IndexA: ia, IndexB: ib})
	}
}

// detail reads the records of the changed differences again and names
// the fields that differ.
func (d *differ) detail(ctx context.Context, sa, sb *side) error {
	var ia, ib []int64
	for _, df := range d.res.Diffs {
		if df.Kind == Changed {
			ia, ib = append(ia, df.IndexA), append(ib, df.IndexB)
		}
	}
	if len(ia) == 0 {
		return nil
	}
	ra, err := readAt(ctx, sa.dir, ia)
	if err != nil {
		return fmt.Errorf("diff: A: %w", err)
	}
	rb, err := readAt(ctx, sb.dir, ib)
	if err != nil {
		return fmt.Errorf("diff: B: %w", err)
	}
	for i := range d.res.Diffs {
		df := &d.res.Diffs[i]
		if df.Kind != Changed {
			continue
		}
		a, b := ra[df.IndexA], rb[df.IndexB]
		df.Key.ResourceID = a.ResourceID
		df.Fields = d.fields(a, sa, b, sb)
	}
	return nil
}

// readAt reads the records at the given positions of a trace: in a trace
// folder, decoding only the segments that hold them; elsewhere (a packed
// file, a URL), reading up to the last of them.
func readAt(ctx context.Context, src string, want []int64) (map[int64]*format.Record, error) {
	slices.Sort(want)
	got := make(map[int64]*format.Record, len(want))
	m, err := format.ReadManifest(src)
	if err != nil {
		r, err := format.OpenSource(ctx, src, format.OpenOptions{})
		if err != nil {
			return nil, err
		}
		defer r.Close()
		for i := int64(0); len(want) > 0; i++ {
			rec, err := r.Next()
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			for len(want) > 0 && want[0] == i {
				got[i] = rec
				want = want[1:]
			}
		}
		return got, nil
	}
	dir := src
	first := int64(0)
	for _, seg := range m.Segments {
		end := first + seg.Records
		if len(want) > 0 && want[0] < end {
			r, err := format.OpenSegment(filepath.Join(dir, seg.Name))
			if err != nil {
				return nil, err
			}
			for i := first; i < end && len(want) > 0; i++ {
				rec, err := r.Next()
				if err != nil {
					r.Close()
					return nil, fmt.Errorf("record %d: %w", i, err)
				}
				for len(want) > 0 && want[0] == i {
					got[i] = rec
					want = want[1:]
				}
			}
			r.Close()
		}
		first = end
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("%s: no record %d: the trace changed while it was read", dir, want[0])
	}
	return got, nil
}

// leftovers reports the records that found no partner, in index order.
func (d *differ) leftovers(sa, sb *side) {
	for _, s := range []*side{sa, sb} {
		es := make([]*entry, 0, len(s.pending))
		for _, e := range s.pending {
			es = append(es, e)
		}
		slices.SortFunc(es, func(x, y *entry) int { return int(x.index - y.index) })
		for _, e := range es {
			g := d.group(e)
			diff := Difference{Key: keyOf(e), IndexA: -1, IndexB: -1}
			if s.isA {
				d.res.OnlyA++
				g.OnlyA++
				diff.Kind, diff.IndexA = OnlyA, e.index
			} else {
				d.res.OnlyB++
				g.OnlyB++
				diff.Kind, diff.IndexB = OnlyB, e.index
			}
			if len(d.res.Diffs) < d.opt.MaxDiffs {
				d.res.Diffs = append(d.res.Diffs, diff)
			}
		}
	}
}

func keyOf(e *entry) Key {
	return Key{Record: e.rtype.String(), Flow: e.flow.String(), Actor: e.actor, ResourceID: e.rid, EventType: e.typ, Occurrence: int(e.occ) + 1}
}

func (d *differ) group(e *entry) *Group {
	k := [3]string{e.rtype.String(), e.flow.String(), TypeName(e.typ)}
	g := d.groups[k]
	if g == nil {
		g = &Group{Record: k[0], Flow: k[1], Type: k[2]}
		d.groups[k] = g
	}
	return g
}

// TypeName is how a diff names an event type in its groups: its short name, the type
// itself when the protocol does not define it, "subscribe" for none.
func TypeName(t string) string {
	if t == "" {
		return "subscribe"
	}
	if s := maestro.ShortType(t); s != maestro.OtherType {
		return s
	}
	return t
}

// finish sorts the groups for printing.
func (d *differ) finish() {
	d.res.Groups = make([]Group, 0, len(d.groups))
	for _, g := range d.groups {
		d.res.Groups = append(d.res.Groups, *g)
	}
	slices.SortFunc(d.res.Groups, func(x, y Group) int {
		if c := strings.Compare(x.Record, y.Record); c != 0 {
			return c
		}
		if c := strings.Compare(x.Flow, y.Flow); c != 0 {
			return c
		}
		return strings.Compare(x.Type, y.Type)
	})
	if d.res.Diffs == nil {
		d.res.Diffs = []Difference{}
	}
}

func (d *differ) keyHash(rt format.RecordType, f format.Flow, actor, rid, typ string) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteByte(byte(rt))
	h.WriteByte(byte(f))
	h.WriteString(actor)
	h.WriteByte(0)
	h.WriteString(rid)
	h.WriteByte(0)
	h.WriteString(typ)
	return h.Sum64()
}

// part hashes one compared part; a record's sum adds its parts' hashes,
// so the order of attributes does not matter (map entries have none).
func (d *differ) part(name string, v []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(name)
	h.WriteByte(0)
	h.Write(v)
	return h.Sum64()
}

// sum hashes everything of rec that is compared but its trigger, which
// take adds. It runs on the feeders, concurrently.
func (d *differ) sum(isA bool, rec *format.Record) (uint64, error) {
	var sum uint64
	var scratch [binary.MaxVarintLen64]byte
	num := func(name string, v uint64) {
		if !d.ignore[name] {
			sum += d.part(name, binary.AppendUvarint(scratch[:0], v))
		}
	}
	num("offset", uint64(rec.Offset))
	if rec.HasTrigger {
		num("delay", uint64(rec.Delay))
	}
	if rec.Type == format.TypeOutcome {
		o := &rec.Outcome
		num("outcome.index", o.Index)
		num("outcome.status", uint64(o.Status))
		num("outcome.code", uint64(o.Code))
		num("outcome.lateness", uint64(o.Lateness))
		num("outcome.latency", uint64(o.Latency))
		num("outcome.delivery", uint64(o.Delivery))
		if !d.ignore["outcome.note"] {
			sum += d.part("outcome.note", []byte(o.Note))
		}
	}
	if len(rec.Data) == 0 {
		return sum, nil
	}
	if rec.Flow.Subscribe() {
		if !d.ignore["subscription"] {
			sum += d.part("subscription", rec.Data)
		}
		return sum, nil
	}
	err := wire.Parts(rec.Data, func(name []byte, attr bool, v []byte) error {
		if d.ignore[string(name)] {
			return nil
		}
		switch {
		case attr && d.ids != nil && isRemapped(name):
			str := remapAttr(d.ids, isA, rec.ResourceID, string(name), v)
			sum += d.part(string(name), []byte(str))
		case !attr && bytes.Equal(name, wire.PartData) && len(d.dataPaths) > 0:
			b, err := d.stripData(v)
			if err != nil {
				return err
			}
			sum += d.part("data", b)
		default:
			var h maphash.Hash
			h.SetSeed(d.seed)
			h.Write(name)
			h.WriteByte(0)
			h.Write(v)
			sum += h.Sum64()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", rec.Flow, rec.EventType, err)
	}
	return sum, nil
}

// isRemapped reports whether a replay with a run id rewrites attribute
// name (see replay's rewrites in run.json).
func isRemapped(name []byte) bool {
	return string(name) == maestro.AttrResourceID || string(name) == maestro.AttrMetadata
}

// remapAttr is the string value of a remapped attribute as B would carry
// it: A's values are mapped as the replay maps them.
func remapAttr(ids *maestro.RunIDs, isA bool, rid, name string, v []byte) string {
	s := string(wire.StringValue(v))
	if !isA || rid == "" {
		return s
	}
	if name == maestro.AttrResourceID {
		return ids.ID(s)
	}
	return strings.ReplaceAll(s, rid, ids.ID(rid))
}

// stripData re-encodes JSON data without the ignored paths (keys sorted,
// so equal data gives equal bytes); data that is not JSON is compared as
// it is.
func (d *differ) stripData(b []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b, nil
	}
	for _, p := range d.dataPaths {
		v = strip(v, p)
	}
	return json.Marshal(v)
}

// strip removes path from v: members of objects by name, through every
// element of arrays.
func strip(v any, path []string) any {
	switch x := v.(type) {
	case map[string]any:
		if len(path) == 1 {
			delete(x, path[0])
			return x
		}
		if c, ok := x[path[0]]; ok {
			x[path[0]] = strip(c, path[1:])
		}
	case []any:
		for i := range x {
			x[i] = strip(x[i], path)
		}
	}
	return v
}
