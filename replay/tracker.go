package replay

import (
	"sync"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// recMeta is what the replay keeps of a trace record once its bytes are
// gone: enough to write its outcome.
type recMeta struct {
	index     uint64
	offset    time.Duration
	flow      format.Flow
	actor     string
	rid       string // resource id as in the trace
	eventType string
}

func metaOf(i uint64, r *format.Record) recMeta {
	return recMeta{index: i, offset: r.Offset, flow: r.Flow, actor: r.Actor, rid: r.ResourceID, eventType: r.EventType}
}

// specState follows one spec event from its send to its delivery on the
// agent's stream.
type specState struct {
	meta     recMeta
	cluster  string
	wireRID  string // the resource id on the wire (remapped under a run id)
	external bool   // sent by a real source, not this replay (--only agents)
	sentAt   time.Time
	lateness time.Duration
	latency  time.Duration

	phase     phase
	published bool      // handed to Publish (addSpec)
	at        time.Time // its delivery
	version   int64
	hasVer    bool

	statuses []*statusState // replies waiting for the delivery
	expects  []recMeta      // server>agent records waiting for the delivery

	// A later spec of the same resource (an update after the create, a
	// delete after the update) is published only once this one is
	// settled: delivered or failed, and every status answering it sent
	// or ended. A source waits for what it changed, and Maestro ignores
	// a status of a version it has moved past; at --max nothing else
	// would keep a work's events in order.
	openReplies int           // statuses registered, not yet sent or ended
	settled     chan struct{} // closed when settled, once a later spec waits for it
	after       chan struct{} // this spec waits for the one before it
	left        bool          // settled and no longer the resource's last spec
}

// statusState follows one status reply from the delivery of its spec to
// its arrival on the source's stream.
type statusState struct {
	meta     recMeta
	spec     *specState
	agent    string
	external bool // sent by a real agent, not this replay (--only source)
	delay    time.Duration
	data     []byte // the recorded event, until it is sent
	due      time.Time
	seq      string
	sentAt   time.Time

	lateness, latency time.Duration
	phase             phase
	fwdAt             time.Time // its forward; zero until it came
	expects           []recMeta // server>source records waiting
}

// phase is where a followed send (a spec, or a status reply) stands, from
// its record being read to its outcome. Its call and its arrival on the
// far stream (a spec's delivery, a status's forward) may come in either
// order, so both orders have a phase. The tracker moves a send only by
// specTo and statusTo.
type phase uint8

const (
	waiting      phase = iota // read, not handed to Publish
	calling                   // its Publish call has not returned
	arrivedEarly              // arrived while its Publish call had not returned
	sent                      // the call returned OK; not arrived yet
	delivered                 // sent and arrived: its outcome is written
	failed                    // not sent, or the call failed: its outcome is written
	ended                     // the run ended first: finish wrote its outcome
)

// reported says the send's own outcome is written: nothing changes it.
func (p phase) reported() bool { return p >= delivered }

// arrived says the send's delivery (or forward) was seen.
func (p phase) arrived() bool { return p == arrivedEarly || p == delivered }

// onCallOK is the phase after the send's Publish call returned OK.
func (p phase) onCallOK() phase {
	if p == arrivedEarly {
		return delivered
	}
	return sent
}

// onArrival is the phase after the send's arrival.
func (p phase) onArrival() phase {
	if p == sent {
		return delivered
	}
	return arrivedEarly
}

// specTo moves a spec to phase p. Call with t.mu held.
func (t *tracker) specTo(s *specState, p phase) { s.phase = p }

// statusTo moves a status to phase p and keeps the counts that follow
// from its phase: a status leaves unsent once it is handed to Publish or
// ended, stops holding its spec's next one back once its call returned or
// it failed, and is no longer pending once its outcome is written. finish
// (to ended) resets the counts itself. Call with t.mu held.
func (t *tracker) statusTo(st *statusState, p phase) {
	from := st.phase
	st.phase = p
	if p == ended {
		return
	}
	if from == waiting && p != waiting {
		t.unsent--
	}
	if from < sent && (p == sent || p == delivered || p == failed) && st.spec != nil {
		st.spec.openReplies--
		t.settle(st.spec)
	}
	if !from.reported() && p.reported() {
		t.pendingStatuses--
	}
}

// tracker matches sends with deliveries. Deliveries can arrive before the
// Publish call that caused them returns, and before the replay has read the
// trace record that expects them, so every step tolerates any order.
type tracker struct {
	mu sync.Mutex

	specByIdx   map[uint64]*specState   // spec records and the server>agent records of their delivery
	undelivered map[string][]*specState // wire resource id -> specs sent, not yet delivered (FIFO)
	statusByIdx map[uint64]*statusState
	bySeq       map[string]*statusState // sequence id -> status sent, not yet forwarded
	lastSpec    map[string]*specState   // wire resource id -> its latest spec not yet settled
	gated       map[*specState]bool     // released by the pacer, waiting for the spec before them
	giveUp      chan struct{}           // closed by finish: gated specs are not sent

	// order lists followed records in trace order, so prune can forget
	// old finished ones: a replay of the full trace must not keep a state
	// per record.
	order []orderEntry

	pendingSpecs    int // sent or in flight, not delivered
	pendingStatuses int // read, not finished (waiting, scheduled, in flight or not forwarded)
	unsent          int // read, not yet handed to Publish: each holds its event

	// side is the part of the traffic the replay plays (--only). With
	// SideSource no delivery is seen, and statuses sent by real agents
	// are matched on their forward by resource id (awaiting, early); with
	// SideAgents no forward is seen.
	side     Side
	awaiting map[string][]*statusState // wire resource id -> statuses awaited from real agents (FIFO)
	early    map[string][]time.Time    // wire resource id -> forwards that came before their status was read

	awaited            int   // statuses awaited from real agents (--only source), of pendingStatuses
	deliveries         int64 // specs delivered as expected: the stall watch's progress
	unexpectedSpecs    int64 // deliveries with no spec waiting for them
	unexpectedStatuses int64 // forwards with an unknown sequence id
	duplicateForwards  int64 // the same status forwarded again

	// longestAnswer is the longest trace-time gap seen between a spec and
	// a record that answers it (its delivery, its status reply, that
	// reply's forward), and sawReply whether any status reply was among
	// them: they bound how far past a --limit or --duration cut the trace
	// is worth reading (answerSpan).
	longestAnswer time.Duration
	sawReply      bool

	emit func(m recMeta, o format.Outcome) // writes an outcome; never blocks
	fire func(s *statusState)              // schedules a status whose spec arrived
	// replyDelay scales a recorded reply delay (speed), or zeroes it (max).
	replyDelay func(time.Duration) time.Duration
}

func newTracker(emit func(recMeta, format.Outcome), fire func(*statusState), replyDelay func(time.Duration) time.Duration) *tracker {
	return &tracker{
		specByIdx:   map[uint64]*specState{},
		undelivered: map[string][]*specState{},
		statusByIdx: map[uint64]*statusState{},
		bySeq:       map[string]*statusState{},
		lastSpec:    map[string]*specState{},
		gated:       map[*specState]bool{},
		giveUp:      make(chan struct{}),
		emit:        emit,
		fire:        fire,
		replyDelay:  replyDelay,
	}
}

type orderEntry struct {
	offset time.Duration
	index  uint64
	status bool
}

// prune forgets finished specs and statuses recorded before offset (in
// trace time). Records that answer them come within the reply horizon, so
// nothing later looks them up. Unfinished ones stay until they finish or
// the run ends.
func (t *tracker) prune(before time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for ; n < len(t.order) && t.order[n].offset < before; n++ {
		e := t.order[n]
		if e.status {
			if st := t.statusByIdx[e.index]; st != nil && st.phase.reported() && len(st.expects) == 0 {
				delete(t.statusByIdx, e.index)
				delete(t.bySeq, st.seq)
			}
			continue
		}
		if s := t.specByIdx[e.index]; s != nil && s.phase.reported() && len(s.statuses) == 0 && len(s.expects) == 0 {
			delete(t.specByIdx, e.index)
		}
	}
	if n > 0 {
		t.order = append(t.order[:0], t.order[n:]...)
	}
}

// register makes a spec known as soon as it is scheduled, so the trace
// records that answer it (read right after it) find it.
func (t *tracker) register(s *specState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The trace holds a spec's statuses before the resource's next spec
	// (generate puts them so), so prev's replies are all registered now.
	if prev := t.lastSpec[s.wireRID]; prev != nil && !prev.left {
		if prev.settled == nil {
			prev.settled = make(chan struct{})
		}
		s.after = prev.settled
	}
	t.lastSpec[s.wireRID] = s
	t.specByIdx[s.meta.index] = s
	t.order = append(t.order, orderEntry{offset: s.meta.offset, index: s.meta.index})
}

// settle releases the spec that waits for s once s is settled. Call with
// t.mu held after anything that may settle it.
func (t *tracker) settle(s *specState) {
	if s == nil || s.left || !s.phase.reported() || s.openReplies > 0 {
		return
	}
	s.left = true
	if s.settled != nil {
		close(s.settled)
	}
	if t.lastSpec[s.wireRID] == s {
		delete(t.lastSpec, s.wireRID)
	}
}

// gate reports whether a released spec may be published now; if not, it
// is counted as pending until ungate.
func (t *tracker) gate(s *specState) bool {
	if s.after == nil {
		return true
	}
	select {
	case <-s.after:
		return true
	default:
	}
	t.mu.Lock()
	t.gated[s] = true
	t.mu.Unlock()
	return false
}

// ungate waits until the spec before s is settled and reports true, or
// until finish gave up on s (and reported it) and reports false.
func (t *tracker) ungate(s *specState) bool {
	select {
	case <-s.after:
	case <-t.giveUp:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.gated[s] {
		return false
	}
	delete(t.gated, s)
	return true
}

// addSpec marks a registered spec as being published. Call before Publish:
// the delivery may race the call's return.
func (t *tracker) addSpec(s *specState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.published = true
	t.specTo(s, calling)
	if t.side == SideSource {
		return // no agent of this replay receives it
	}
	t.undelivered[s.wireRID] = append(t.undelivered[s.wireRID], s)
	t.pendingSpecs++
}

// specNotSent records a spec that was never published (dropped as late,
// or the run ended first), and ends what waited for it: the records that
// answer it may have been read already.
func (t *tracker) specNotSent(s *specState, o format.Outcome) {
	t.mu.Lock()
	t.specTo(s, failed)
	t.specByIdx[s.meta.index] = s
	out := append([]outcomeOf{{s.meta, o}}, t.failWaiters(s, "its spec was not sent")...)
	t.settle(s)
	t.mu.Unlock()
	t.emitAll(out)
}

// specSent records the end of a spec's Publish call.
func (t *tracker) specSent(s *specState, latency time.Duration, code uint32, note string) {
	var out []outcomeOf
	t.mu.Lock()
	if s.phase.reported() { // by finish, while the call was in flight
		t.mu.Unlock()
		return
	}
	s.latency = latency
	if code != 0 {
		t.specTo(s, failed)
		t.removeUndelivered(s)
		out = append(out, outcomeOf{s.meta, format.Outcome{Status: format.OutcomeFailed, Code: code, Lateness: s.lateness, Latency: latency, Note: note}})
		out = append(out, t.failWaiters(s, "its spec failed to publish")...)
	} else {
		switch t.side {
		case SideSource:
			// Nothing will arrive: its outcome is written now.
			t.specTo(s, delivered)
			out = append(out, outcomeOf{s.meta, format.Outcome{Status: format.OutcomeSent, Lateness: s.lateness, Latency: latency, Note: noteSpecNotSeen}})
		default:
			t.specTo(s, s.phase.onCallOK())
			if s.phase == delivered {
				out = append(out, outcomeOf{s.meta, t.specOutcome(s)})
			}
		}
	}
	t.settle(s)
	t.mu.Unlock()
	t.emitAll(out)
}

// failWaiters ends everything that waited for a spec that will never
// arrive. Call with t.mu held.
func (t *tracker) failWaiters(s *specState, why string) []outcomeOf {
	var out []outcomeOf
	for _, e := range s.expects {
		out = append(out, outcomeOf{e, format.Outcome{Status: format.OutcomeMissing, Note: why}})
	}
	s.expects = nil
	for _, st := range s.statuses {
		t.statusTo(st, failed)
		out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeNotTriggered, Note: why}})
		out = append(out, t.statusWaitersMissing(st, "its status was not sent: "+why)...)
	}
	s.statuses = nil
	return out
}

func (t *tracker) statusWaitersMissing(st *statusState, why string) []outcomeOf {
	var out []outcomeOf
	for _, e := range st.expects {
		out = append(out, outcomeOf{e, format.Outcome{Status: format.OutcomeMissing, Note: why}})
	}
	st.expects = nil
	return out
}

func (t *tracker) removeUndelivered(s *specState) {
	q := t.undelivered[s.wireRID]
	for i, x := range q {
		if x == s {
			q = append(q[:i], q[i+1:]...)
			t.pendingSpecs--
			break
		}
	}
	if len(q) == 0 {
		delete(t.undelivered, s.wireRID)
	} else {
		t.undelivered[s.wireRID] = q
	}
}

func (t *tracker) specOutcome(s *specState) format.Outcome {
	if s.external {
		return format.Outcome{Status: format.OutcomeDelivered, Note: noteSpecNotSent}
	}
	return format.Outcome{Status: format.OutcomeDelivered, Lateness: s.lateness, Latency: s.latency, Delivery: s.at.Sub(s.sentAt)}
}

type outcomeOf struct {
	m recMeta
	o format.Outcome
}

func (t *tracker) emitAll(out []outcomeOf) {
	for _, x := range out {
		t.emit(x.m, x.o)
	}
}

// delivered handles a spec event on an agent's stream. It returns the
// delivery latency and whether a sent spec was waiting for it.
func (t *tracker) delivered(k maestro.Keys, at time.Time) (time.Duration, bool) {
	var out []outcomeOf
	var fire []*statusState
	t.mu.Lock()
	q := t.undelivered[k.ResourceID]
	if len(q) == 0 {
		t.unexpectedSpecs++
		t.mu.Unlock()
		return 0, false
	}
	s := q[0]
	if k.Deleting && s.meta.eventType != maestro.TypeSpecDelete {
		// A resync answer that deletes what the agent holds (the server
		// lost it) is not the delivery of a pending create or update.
		t.unexpectedSpecs++
		t.mu.Unlock()
		return 0, false
	}
	if len(q) == 1 {
		delete(t.undelivered, k.ResourceID)
	} else {
		t.undelivered[k.ResourceID] = q[1:]
	}
	t.pendingSpecs--
	t.deliveries++
	s.at = at
	s.version, s.hasVer = k.ResourceVersion, k.HasResourceVersion
	var d time.Duration
	if !s.external {
		d = at.Sub(s.sentAt)
	}
	t.specTo(s, s.phase.onArrival())
	if s.phase == delivered {
		out = append(out, outcomeOf{s.meta, t.specOutcome(s)})
	}
	for _, e := range s.expects {
		out = append(out, outcomeOf{e, format.Outcome{Status: format.OutcomeDelivered, Delivery: d}})
	}
	s.expects = nil
	for _, st := range s.statuses {
		st.due = at.Add(t.replyDelay(st.delay))
		fire = append(fire, st)
	}
	s.statuses = nil
	t.settle(s)
	t.mu.Unlock()
	t.emitAll(out)
	for _, st := range fire {
		t.fire(st)
	}
	return d, !s.external
}

// expectDelivery handles a server>agent record: the trace says the spec
// record it answers was delivered.
func (t *tracker) expectDelivery(m recMeta, trigger uint64, has bool) {
	t.mu.Lock()
	s := t.specByIdx[trigger]
	if s != nil {
		t.noteAnswer(m.offset, s.meta.offset, false)
	}
	switch {
	case !has || s == nil:
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: "answers a record that was not replayed"})
		return
	case s.phase == failed:
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeMissing, Note: "its spec was not sent"})
		return
	}
	t.specByIdx[m.index] = s // a status may name this record as its trigger
	t.order = append(t.order, orderEntry{offset: m.offset, index: m.index})
	if s.phase.arrived() {
		d := s.at.Sub(s.sentAt)
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeDelivered, Delivery: d})
		return
	}
	s.expects = append(s.expects, m)
	t.mu.Unlock()
}

// addStatus registers a status reply read from the trace. It fires at once
// if its spec has arrived, later when it does, or never (with an outcome)
// if its spec was not sent.
func (t *tracker) addStatus(st *statusState, trigger uint64, has bool) {
	t.mu.Lock()
	s := t.specByIdx[trigger]
	if s != nil {
		t.noteAnswer(st.meta.offset, s.meta.offset, true)
	}
	if !has || s == nil || s.phase == failed {
		o := format.Outcome{Status: format.OutcomeSkipped, Note: "not sent: answers a record that was not replayed"}
		if s != nil {
			o = format.Outcome{Status: format.OutcomeNotTriggered, Note: "its spec was not sent"}
		}
		st.phase = failed // never counted: no move
		t.statusByIdx[st.meta.index] = st
		t.order = append(t.order, orderEntry{offset: st.meta.offset, index: st.meta.index, status: true})
		t.mu.Unlock()
		t.emit(st.meta, o)
		return
	}
	st.spec = s
	t.statusByIdx[st.meta.index] = st
	t.order = append(t.order, orderEntry{offset: st.meta.offset, index: st.meta.index, status: true})
	t.pendingStatuses++
	t.unsent++
	s.openReplies++
	if s.left && t.lastSpec[s.wireRID] == nil {
		// Settled before this reply was read: the resource's next spec,
		// later in the trace, must wait for it again.
		s.left = false
		t.lastSpec[s.wireRID] = s
	}
	if !s.phase.arrived() {
		s.statuses = append(s.statuses, st)
		t.mu.Unlock()
		return
	}
	st.due = s.at.Add(t.replyDelay(st.delay))
	t.mu.Unlock()
	t.fire(st)
}

// statusVersion returns the version the agent received with the spec a
// status answers.
func (t *tracker) statusVersion(st *statusState) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return st.spec.version, st.spec.hasVer
}

// statusSending registers the sequence id of a status about to be
// published, so its forward can be matched, and reports whether to publish
// it: not when the run's end (finish) already gave it its outcome while it
// was being prepared, which would give it a second.
func (t *tracker) statusSending(st *statusState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.phase.reported() {
		return false
	}
	t.bySeq[st.seq] = st
	t.statusTo(st, calling)
	return true
}

// statusNotSent ends a status dropped before sending.
//
// A status finish already reported (it was still queued on the dispatcher
// when the run ended) keeps that one outcome.
func (t *tracker) statusNotSent(st *statusState, o format.Outcome) {
	t.mu.Lock()
	if st.phase.reported() {
		t.mu.Unlock()
		return
	}
	t.statusTo(st, failed)
	out := t.statusWaitersMissing(st, "its status was not sent")
	t.mu.Unlock()
	t.emit(st.meta, o)
	t.emitAll(out)
}

// statusSent records the end of a status's Publish call.
func (t *tracker) statusSent(st *statusState, latency time.Duration, code uint32, note string) {
	var out []outcomeOf
	t.mu.Lock()
	if st.phase.reported() { // by finish, while the call was in flight
		t.mu.Unlock()
		return
	}
	st.latency = latency
	if code != 0 {
		t.statusTo(st, failed)
		delete(t.bySeq, st.seq)
		out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeFailed, Code: code, Lateness: st.lateness, Latency: latency, Note: note}})
		out = append(out, t.statusWaitersMissing(st, "its status failed to publish")...)
	} else if t.side == SideAgents {
		// Nothing will arrive: its outcome is written now.
		t.statusTo(st, delivered)
		out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeSent, Lateness: st.lateness, Latency: latency, Note: noteStatusNotSeen}})
	} else {
		t.statusTo(st, st.phase.onCallOK())
		if st.phase == delivered {
			out = append(out, outcomeOf{st.meta, t.statusOutcome(st)})
		}
	}
	t.mu.Unlock()
	t.emitAll(out)
}

func (t *tracker) statusOutcome(st *statusState) format.Outcome {
	return format.Outcome{Status: format.OutcomeDelivered, Lateness: st.lateness, Latency: st.latency, Delivery: st.forwardDelay()}
}

// forwarded handles a status event on a source's stream, matched by the
// sequence id the replay minted for it.
func (t *tracker) forwarded(k maestro.Keys, at time.Time) (time.Duration, bool) {
	if t.side == SideSource {
		return t.forwardedByResource(k, at)
	}
	var out []outcomeOf
	t.mu.Lock()
	st := t.bySeq[k.SequenceID]
	if st == nil {
		t.unexpectedStatuses++
		t.mu.Unlock()
		return 0, false
	}
	if !st.fwdAt.IsZero() {
		t.duplicateForwards++
		t.mu.Unlock()
		return 0, false
	}
	st.fwdAt = at
	d := st.forwardDelay()
	if !st.phase.reported() {
		t.statusTo(st, st.phase.onArrival())
		if st.phase == delivered {
			out = append(out, outcomeOf{st.meta, t.statusOutcome(st)})
		}
	}
	for _, e := range st.expects {
		out = append(out, outcomeOf{e, format.Outcome{Status: format.OutcomeDelivered, Delivery: d}})
	}
	st.expects = nil
	t.mu.Unlock()
	t.emitAll(out)
	return d, true
}

// expectForward handles a server>source record: the trace says the status
// record it answers was forwarded to its source.
func (t *tracker) expectForward(m recMeta, trigger uint64, has bool) {
	t.mu.Lock()
	st := t.statusByIdx[trigger]
	if st != nil && st.spec != nil {
		t.noteAnswer(m.offset, st.spec.meta.offset, false)
	}
	switch {
	case !has || st == nil:
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: "answers a record that was not replayed"})
		return
	case st.phase == failed:
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeMissing, Note: "its status was not sent"})
		return
	case !st.fwdAt.IsZero():
		d := st.forwardDelay()
		t.mu.Unlock()
		t.emit(m, format.Outcome{Status: format.OutcomeDelivered, Delivery: d})
		return
	}
	st.expects = append(st.expects, m)
	t.mu.Unlock()
}

// noteAnswer records the trace-time gap between a spec (at offset spec)
// and a record that answers it (at offset answer); reply says the answer
// is a status reply. Called with t.mu held.
func (t *tracker) noteAnswer(answer, spec time.Duration, reply bool) {
	t.longestAnswer = max(t.longestAnswer, answer-spec)
	t.sawReply = t.sawReply || reply
}

// answerSpan is how far past the last spec in scope (in trace time) the
// replay keeps reading after a --limit or --duration cut, to find the
// records that answer the specs it sent: twice the longest answer seen so
// far plus a second. It grows as later answers are read, and is the whole
// replyHorizon until a status reply has been seen (deliveries come within
// milliseconds, replies may take seconds). Reading the whole horizon
// every time (5 minutes of trace, dozens of segments decompressed at
// once) took both cores from the sends still due.
func (t *tracker) answerSpan() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sawReply {
		return replyHorizon
	}
	return min(2*t.longestAnswer+time.Second, replyHorizon)
}

// known reports whether a trace record index is being followed (a spec or
// status that was replayed).
func (t *tracker) known(i uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.specByIdx[i] != nil || t.statusByIdx[i] != nil
}

// holding returns how many sends hold their event in memory or wait for a
// delivery before their reply can go: specs not yet delivered and replies
// not yet sent. It bounds how far --max reads ahead.
func (t *tracker) holding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingSpecs + t.unsent
}

// specsWaiting returns how many specs were published and wait for their
// delivery.
func (t *tracker) specsWaiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingSpecs
}

// surprises returns what arrived that no send explains: deliveries with no
// spec waiting, forwards of unknown sequence ids, and forwards again.
func (t *tracker) surprises() (unexpectedSpecs, unexpectedStatuses, duplicateForwards int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unexpectedSpecs, t.unexpectedStatuses, t.duplicateForwards
}

// pending returns how many sends still wait for their delivery.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingSpecs + t.pendingStatuses + len(t.gated)
}

// noteCallInFlight marks the outcome of a status whose Publish call was
// still waiting for its answer when the run ended.
const noteCallInFlight = "its Publish call was still in flight at the end of the run"

// finish reports everything still open as missing (or, for a status whose
// spec never arrived, as not sent; for one whose Publish call had not
// returned, by whether its forward came). Call once, after the settle
// time.
func (t *tracker) finish() {
	t.mu.Lock()
	// Mostly one outcome per status still open: room for them up front
	// (a run whose statuses never came ends with tens of thousands).
	out := make([]outcomeOf, 0, len(t.statusByIdx)+len(t.gated))
	for s := range t.gated {
		t.specTo(s, failed)
		out = append(out, outcomeOf{s.meta, format.Outcome{Status: format.OutcomeNotSent, Lateness: s.lateness,
			Note: "not sent: the spec before it on this resource was never settled"}})
		out = append(out, t.failWaiters(s, "its spec was not sent")...)
	}
	clear(t.gated)
	close(t.giveUp)
	for _, q := range t.undelivered {
		for _, s := range q {
			if !s.phase.reported() {
				note := "sent, never delivered to agent " + s.cluster
				if s.external {
					note = "never delivered to agent " + s.cluster + " (--only agents: sent by another source, if at all)"
				}
				out = append(out, outcomeOf{s.meta, format.Outcome{Status: format.OutcomeMissing, Lateness: s.lateness, Latency: s.latency, Note: note}})
			}
			t.specTo(s, failed)
			out = append(out, t.failWaiters(s, "its spec was never delivered")...)
		}
	}
	t.undelivered = map[string][]*specState{}
	t.pendingSpecs = 0
	for _, st := range t.statusByIdx {
		if st.phase.reported() {
			continue
		}
		was := st.phase
		t.statusTo(st, ended)
		switch {
		case st.external && st.spec.phase == failed:
			out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeNotTriggered, Note: "its spec was not sent"}})
			out = append(out, t.statusWaitersMissing(st, "its spec was not sent")...)
		case st.external:
			out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeMissing, Note: noteStatusNeverSeen}})
			out = append(out, t.statusWaitersMissing(st, "its status was never forwarded")...)
		case was == sent:
			out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeMissing, Lateness: st.lateness, Latency: st.latency,
				Note: "sent, never forwarded to its source"}})
			out = append(out, t.statusWaitersMissing(st, "its status was never forwarded")...)
		case was == arrivedEarly:
			// Its Publish call had not returned, but the forward proves
			// the event went out.
			o := t.statusOutcome(st)
			o.Note = noteCallInFlight
			out = append(out, outcomeOf{st.meta, o})
		case was == calling:
			out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeMissing, Lateness: st.lateness,
				Note: "published, never forwarded to its source; " + noteCallInFlight}})
			out = append(out, t.statusWaitersMissing(st, "its status was never forwarded")...)
		default:
			out = append(out, outcomeOf{st.meta, format.Outcome{Status: format.OutcomeNotSent, Note: "not sent: still waiting at the end of the run"}})
			out = append(out, t.statusWaitersMissing(st, "its status was not sent")...)
		}
	}
	t.pendingStatuses = 0
	t.awaited = 0
	t.unsent = 0
	t.mu.Unlock()
	t.emitAll(out)
}

// forwardDelay is the forward latency of a forwarded status. Call with the
// tracker's lock held.
func (st *statusState) forwardDelay() time.Duration { return st.fwdAt.Sub(st.sentAt) }
