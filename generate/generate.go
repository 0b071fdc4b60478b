// Package generate precomputes the traffic of a Maestro scale test as a
// cereplay trace, so that every later run replays exactly the same bytes.
//
// The default workload is Maestro's published scale test (maestro-addon
// test/performance): 3,000 consumers, 50 ManifestWorks each, every work
// the 7 objects of Kubernetes' guestbook example with status feedback,
// created at 20 per second, each answered by its agent's status report.
// Every message is built as the SDK's own codecs build it, byte for byte:
// the payloads are marshalled once from the open-cluster-management API
// types and only the few per-work fields are patched in (see encoder).
//
// The same Params give byte-identical segments and the same digest, on
// any machine and whatever the parallelism: every random choice of a work
// comes from a source keyed by (seed, work).
//
// # What a generated trace holds
//
// In offset order:
//
//   - One source-subscribe record at offset 0 (actor: the source id; data:
//     the SubscriptionRequest the SDK source client sends).
//   - One agent-subscribe record per cluster (actor: the cluster; data: its
//     SubscriptionRequest), SubscribeBatch at a time, SubscribeGap apart,
//     with SubscribePause after each batch, as the scale test starts its
//     agents.
//   - From CreateAfter after the last subscribe, one source>server
//     spec.create_request per work, 1/Rate apart, in Order (actor: the
//     source id; resource id: as the SDK source client derives it).
//   - For every work, StatusUpdates agent>server status.update_request
//     records (actor: the cluster), each with its trigger set to the index
//     of the work's spec record and Delay to the time after that spec
//     (ApplyDelay; with two reports, the second AvailableDelay later).
//   - With UpdatesPerWork, that many rounds of spec.update_request over
//     every work in the same order and at the same rate, then with Delete
//     a round of spec.delete_request. A round starts after the last status
//     of the round before. Each is answered by one status: an update's
//     reports the next generation (Maestro bumps the version on every
//     update), a delete's is the agent's Deleted acknowledgement.
//   - With ResyncReconnects, after the last status of those: every agent
//     subscribes again 5 to 10 s later, as after a Maestro restart, and
//     sends its spec.resync_request 1 ms after (resync.go).
//   - With Churn, after the last status of those: Churn spec events a
//     second for ChurnFor, each a create, update or delete drawn from the
//     seed over the works whose last spec is answered (churn.go).
//
// Data is always the message exactly as it goes on the wire: the
// pbv1.CloudEvent for events (not the PublishRequest around it), the
// pbv1.SubscriptionRequest for subscribes. Event ids are version-4 UUIDs
// drawn from the seed, event times are StartTime + offset, every status
// carries resourceversion 1 and a node-1 snowflake sequence id made from
// its time, increasing through the trace. A replayer rewrites those two
// to what the Maestro under test expects.
package generate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// Tool and ModelVersion name the generator in a trace's provenance.
// ModelVersion changes whenever the same parameters would give different
// records, so a digest never silently changes meaning; it is deliberately
// not the binary's version, which would change every sample's digest.
const (
	Tool         = "cereplay generate"
	ModelVersion = "1"
)

// progressEvery is how many records pass between progress calls and
// cancellation checks.
const progressEvery = 4096

// Generate writes the trace p describes into dir (which must not hold a
// trace yet) and returns its manifest. progress, if not nil, is called
// now and then with the records written so far and the total. A cancelled
// ctx stops it within a few thousand records; then, as after any failure,
// what it had written is removed (the folder too, if it made it), so that
// no partial trace is left behind.
func Generate(ctx context.Context, dir string, p Params, progress func(done, total int64)) (*format.Manifest, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.resolved()
	g, err := newGenerator(p)
	if err != nil {
		return nil, err
	}
	p.workloadDigest = g.mix.digest()
	w, err := format.Create(dir, format.WriterOptions{
		SegmentSize: p.SegmentSize,
		Workers:     p.Workers,
		Level:       p.Level,
		Provenance:  p.Provenance(),
	})
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	if err := g.run(ctx, w.Write, progress); err != nil {
		return nil, discard(w, dir, err)
	}
	if err := w.Close(); err != nil {
		return nil, discard(w, dir, fmt.Errorf("generate: finish trace %s: %w", dir, err))
	}
	progress(g.total, g.total)
	return w.Manifest(), nil
}

// discard removes the unfinished trace in dir after err, and says whether
// it could.
func discard(w *format.Writer, dir string, err error) error {
	if derr := w.Discard(); derr != nil {
		return fmt.Errorf("%w (%s holds an unfinished trace without a manifest, which readers refuse; removing it failed: %v)", err, dir, derr)
	}
	return fmt.Errorf("%w (the unfinished trace in %s was removed)", err, dir)
}

// Provenance is what the manifest says about how the trace was made.
func (p *Params) Provenance() format.Provenance {
	return format.Provenance{
		Tool:    Tool,
		Version: ModelVersion,
		Command: p.Command(),
		Params:  p.Map(),
		Seed:    p.Seed,
	}
}

// generator turns Params into the trace's records, in offset order.
type generator struct {
	p        Params
	mix      *workloadMix
	order    []uint32 // work ids in creation order
	clusters []string // cluster names, by index
	names    [][]byte // the same, as bytes
	agents   [][]byte // agent ids (CloudEvent source of status), by index
	period   time.Duration
	total    int64

	index   uint64 // position of the next record in the trace
	pending pendingHeap
	pushes  uint64
	seqs    sequenceIDs

	rec  format.Record
	buf  []byte
	name []byte
	ids  [36]byte
	rid  [36]byte
	rids *resourceIDs
	pcg  *rand.PCG
	rng  *rand.Rand
	seq  []byte

	churned    []workRef // the works the churn created, by work id - Works()
	churnCount []uint32  // per cluster, the works the churn created there
}

// pendingStatus is a status report scheduled for later in the trace.
type pendingStatus struct {
	offset     time.Duration // when it is sent
	push       uint64        // ties at one offset go in scheduling order
	work       uint32
	phase      Phase
	trigger    uint64        // index of the spec record it answers
	specOffset time.Duration // when that spec was sent
	applied    time.Duration // when the work was applied (the first report)
	created    time.Duration // when the work was created (its create's offset)
	generation int32         // the version the status reports
	last       bool          // the last status answering its spec
	id         [16]byte
	resourceID [36]byte // no pointers: moving statuses in the heap needs no write barriers
}

// pendingHeap is a min-heap of scheduled statuses by (offset, push). It
// is typed rather than container/heap's interface so that statuses are
// not boxed, one allocation each.
type pendingHeap []pendingStatus

func (h pendingHeap) less(i, j int) bool {
	if h[i].offset != h[j].offset {
		return h[i].offset < h[j].offset
	}
	return h[i].push < h[j].push
}

func (h *pendingHeap) push(s pendingStatus) {
	*h = append(*h, s)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if !a.less(i, parent) {
			break
		}
		a[i], a[parent] = a[parent], a[i]
		i = parent
	}
}

// last returns the latest offset of the statuses still scheduled.
func (h pendingHeap) last() time.Duration {
	var l time.Duration
	for i := range h {
		l = max(l, h[i].offset)
	}
	return l
}

func (h *pendingHeap) pop() pendingStatus {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < n && a.less(l, small) {
			small = l
		}
		if r < n && a.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		a[i], a[small] = a[small], a[i]
		i = small
	}
	*h = a
	return top
}

func newGenerator(p Params) (*generator, error) {
	mix, err := newWorkloadMix(&p)
	if err != nil {
		return nil, err
	}
	order, err := creationOrder(p.Order, p.Clusters, p.WorksPerCluster, p.Creators)
	if err != nil {
		return nil, err
	}
	g := &generator{
		p: p, mix: mix, order: order,
		period: p.createPeriod(),
		total:  p.Records(),
		rids:   newResourceIDs(),
		pcg:    rand.NewPCG(0, 0),
	}
	g.rng = rand.New(g.pcg)
	for i := 0; i < p.Clusters; i++ {
		name := p.clusterName(i)
		g.clusters = append(g.clusters, name)
		g.names = append(g.names, []byte(name))
		g.agents = append(g.agents, []byte(maestro.AgentID(name)))
	}
	return g, nil
}

// traceResourceVersion is the resourceversion every status carries in the
// trace: the version Maestro gives a new resource. A replayer rewrites it
// to the version its agent actually received.
const traceResourceVersion = 1

// run emits every record through write, in offset order.
func (g *generator) run(ctx context.Context, write func(*format.Record) error, progress func(done, total int64)) error {
	emit := func() error {
		if err := write(&g.rec); err != nil {
			return fmt.Errorf("generate: write record %d: %w", g.index, err)
		}
		g.index++
		if g.index%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				if cause := context.Cause(ctx); cause != err {
					return fmt.Errorf("generate: %w: %w", err, cause) // what cancelled: a signal, say
				}
				return fmt.Errorf("generate: %w", err)
			}
			progress(int64(g.index), g.total)
		}
		return nil
	}

	// The source subscribes first, then the agents, in batches.
	var err error
	if g.buf, err = (proto.MarshalOptions{}).MarshalAppend(g.buf[:0], maestro.SourceSubscription(g.p.SourceID)); err != nil {
		return fmt.Errorf("generate: marshal source subscription: %w", err)
	}
	g.rec = format.Record{Type: format.TypeEvent, Flow: format.FlowSourceSubscribe, Actor: g.p.SourceID, Data: g.buf}
	if err := emit(); err != nil {
		return err
	}
	var last time.Duration
	for c, cluster := range g.clusters {
		last = time.Duration(c/g.p.SubscribeBatch)*g.p.SubscribePause + time.Duration(c)*g.p.SubscribeGap
		if g.buf, err = (proto.MarshalOptions{}).MarshalAppend(g.buf[:0], maestro.AgentSubscription(cluster)); err != nil {
			return fmt.Errorf("generate: marshal subscription of %s: %w", cluster, err)
		}
		g.rec = format.Record{Type: format.TypeEvent, Offset: last, Flow: format.FlowAgentSubscribe, Actor: cluster, Data: g.buf}
		if err := emit(); err != nil {
			return err
		}
	}

	// Then the works are created at the rate; their statuses are merged
	// in as their time comes.
	// Updates and deletes follow in rounds over the same order; a round
	// starts after the last status of the round before, so every work's
	// statuses come before its next spec.
	createStart := last + g.p.CreateAfter
	start := createStart
	for round := 0; round < g.p.rounds(); round++ {
		if round > 0 {
			start = max(start+time.Duration(len(g.order))*g.period, g.pending.last()+g.period)
		}
		for k, work := range g.order {
			specOffset := start + time.Duration(k)*g.period
			if err := g.statusesUntil(specOffset, emit, nil); err != nil {
				return err
			}
			created := createStart + time.Duration(k)*g.period
			var err error
			if round == 0 {
				err = g.spec(work, specOffset)
			} else {
				err = g.change(work, round, specOffset, created)
			}
			if err != nil {
				return err
			}
			if err := emit(); err != nil {
				return err
			}
		}
	}
	start = max(start+time.Duration(len(g.order))*g.period, g.pending.last()+g.period)
	if g.p.ResyncReconnects {
		end, err := g.reconnects(start, emit)
		if err != nil {
			return err
		}
		start = end + g.period
	}
	if g.p.Churn > 0 {
		if err := g.churn(start, createStart, emit); err != nil {
			return err
		}
	}
	return g.statusesUntil(math.MaxInt64, emit, nil)
}

// statusesUntil emits the scheduled statuses due at or before until, in
// offset order, calling each (if not nil) after each one is written.
func (g *generator) statusesUntil(until time.Duration, emit func() error, each func(pendingStatus)) error {
	for len(g.pending) > 0 && g.pending[0].offset <= until {
		s := g.pending.pop()
		if err := g.status(s); err != nil {
			return err
		}
		if err := emit(); err != nil {
			return err
		}
		if each != nil {
			each(s)
		}
	}
	return nil
}

func (g *generator) at(offset time.Duration) time.Time { return g.p.StartTime.Add(offset) }

// workEncoder returns the encoder of a work and leaves its name in g.name.
func (g *generator) workEncoder(work uint32, generation int32) (*encoder, error) {
	c, i := g.ref(work)
	entry := g.mix.pick(g.p.Seed, work)
	g.name = g.mix.appendWorkName(g.name[:0], entry, g.names[c], i)
	return g.mix.encoder(entry, work, g.clusters[c], g.name, i, generation)
}

// spec fills g.rec with the spec.create_request of a work and schedules
// its status reports.
func (g *generator) spec(work uint32, offset time.Duration) error {
	c, _ := g.ref(work)
	enc, err := g.workEncoder(work, traceResourceVersion)
	if err != nil {
		return err
	}
	g.rids.appendID(g.rid[:0], g.p.SourceID, g.names[c], g.name)
	rid := g.rid

	// The draws happen in a fixed order, so a work's choices never depend
	// on parameters that do not concern it.
	r := g.workRand(uint64(work))
	specID := newUUID(r)
	applyDelay := g.p.ApplyDelay.Sample(r)
	first := pendingStatus{
		offset: offset + applyDelay, work: work, phase: PhaseAvailable,
		trigger: g.index, specOffset: offset, applied: offset + applyDelay,
		created: offset, generation: traceResourceVersion,
		id: newUUID(r), resourceID: rid,
	}
	if g.p.StatusUpdates == 2 {
		second := first
		first.phase = PhaseApplied
		second.offset += g.p.AvailableDelay.Sample(r)
		second.id = newUUID(r)
		second.last = true
		g.schedule(first)
		g.schedule(second)
	} else {
		first.last = true
		g.schedule(first)
	}

	g.buf = enc.appendSpec(g.buf[:0], &specInput{
		cluster: g.names[c], workName: g.name, resourceID: g.rid[:],
		id: appendUUID(g.ids[:0], specID), at: g.at(offset),
	})
	g.rec = format.Record{
		Type: format.TypeEvent, Offset: offset, Flow: format.FlowSourceToServer,
		Actor: g.p.SourceID, ResourceID: string(g.rid[:]), EventType: maestro.TypeSpecCreate, Data: g.buf,
	}
	return nil
}

func (g *generator) schedule(s pendingStatus) {
	s.push = g.pushes
	g.pushes++
	g.pending.push(s)
}

// status fills g.rec with a scheduled status report.
func (g *generator) status(s pendingStatus) error {
	c, _ := g.ref(s.work)
	at := g.at(s.offset)
	times := StatusTimes{Applied: g.at(s.applied), Available: at, Ready: at}
	g.seq = g.seqs.next(g.seq[:0], at)
	g.rid = s.resourceID
	enc, err := g.workEncoder(s.work, s.generation)
	if err != nil {
		return err
	}
	if s.phase == PhaseDeleted {
		times = StatusTimes{Applied: g.at(s.applied), Available: g.at(s.applied), Ready: g.at(s.applied)}
	} else if s.generation != traceResourceVersion {
		// An update changes no condition: only the Deployments roll.
		times = StatusTimes{Applied: g.at(s.applied), Available: g.at(s.applied), Ready: at}
	}
	g.buf, err = enc.appendStatus(g.buf[:0], &statusInput{
		cluster: g.names[c], agentID: g.agents[c], resourceID: g.rid[:],
		id: appendUUID(g.ids[:0], s.id), sequenceID: g.seq,
		at: at, created: g.at(s.created), phase: s.phase, times: times, deleted: g.at(s.specOffset),
	})
	if err != nil {
		return err
	}
	g.rec = format.Record{
		Type: format.TypeEvent, Offset: s.offset, Flow: format.FlowAgentToServer,
		Actor: g.clusters[c], ResourceID: string(g.rid[:]), EventType: maestro.TypeStatusUpdate,
		HasTrigger: true, Trigger: s.trigger, Delay: s.offset - s.specOffset, Data: g.buf,
	}
	return nil
}

// change fills g.rec with a later spec event of a work: round 1..N its
// N-th update, the round after them its delete. Each is answered by one
// status: the update's reports the new generation, the delete's is the
// agent's Deleted acknowledgement, after which Maestro removes the bundle.
func (g *generator) change(work uint32, round int, offset, created time.Duration) error {
	return g.changeTo(work, int32(traceResourceVersion+min(round, g.p.UpdatesPerWork)), round > g.p.UpdatesPerWork, offset, created)
}

// changeTo fills g.rec with an update of a work to generation, or with
// its delete (generation: the one it has), and schedules its status.
func (g *generator) changeTo(work uint32, generation int32, deleting bool, offset, created time.Duration) error {
	c, _ := g.ref(work)
	enc, err := g.workEncoder(work, generation)
	if err != nil {
		return err
	}
	g.rids.appendID(g.rid[:0], g.p.SourceID, g.names[c], g.name)

	// When the create's first status said the work was applied: the
	// create's draws again (see spec).
	r := g.workRand(uint64(work))
	newUUID(r)
	applied := created + g.p.ApplyDelay.Sample(r)

	// A source of its own per event, apart from the create's.
	key := uint64(work) | uint64(generation)<<32
	if deleting {
		key |= 1 << 63
	}
	r = g.workRand(key)
	specID := newUUID(r)
	reply := pendingStatus{
		offset: offset + g.p.ApplyDelay.Sample(r), work: work, phase: PhaseAvailable,
		trigger: g.index, specOffset: offset, applied: applied,
		created: created, generation: generation, last: true,
		id: newUUID(r), resourceID: g.rid,
	}
	in := &specInput{
		cluster: g.names[c], workName: g.name, resourceID: g.rid[:],
		id: appendUUID(g.ids[:0], specID), at: g.at(offset), update: true,
	}
	typ := maestro.TypeSpecUpdate
	if deleting {
		reply.phase, typ = PhaseDeleted, maestro.TypeSpecDelete
		g.buf = enc.appendDelete(g.buf[:0], in)
	} else {
		g.buf = enc.appendSpec(g.buf[:0], in)
	}
	g.schedule(reply)
	g.rec = format.Record{
		Type: format.TypeEvent, Offset: offset, Flow: format.FlowSourceToServer,
		Actor: g.p.SourceID, ResourceID: string(g.rid[:]), EventType: typ, Data: g.buf,
	}
	return nil
}
