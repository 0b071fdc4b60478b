package replay

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// Side is the part of the traffic a replay plays. A replay normally plays
// both: the sources publish the specs and the agents answer them. With one
// side only, real clients play the other against the same Maestro: the
// source side drives a real fleet, the agents side is a fleet simulator
// for a real source.
type Side string

const (
	// SideBoth plays the sources and the agents (the default).
	SideBoth Side = ""
	// SideSource publishes the specs on schedule and drains the sources'
	// streams, matching each forwarded status to the spec it answers by
	// resource id; it opens no agent stream and sends no status.
	SideSource Side = "source"
	// SideAgents opens every agent's stream and answers each spec that
	// arrives with the trace's statuses and delays; it publishes no spec
	// and opens no source stream.
	SideAgents Side = "agents"
)

// noteOtherSide is the outcome note of a record the other side's real
// clients play (or see): counted apart, like another shard's records,
// not as missing.
const noteOtherSide = "not played: the other side's real clients play it (--only)"

// Notes of the outcomes whose checks one side cannot make.
const (
	noteSpecNotSeen     = "sent; its delivery is not seen (--only source: real agents receive it)"
	noteSpecNotSent     = "delivered; sent by another source, so its delivery latency is not known (--only agents)"
	noteStatusNotSeen   = "sent; its forward is not seen (--only agents: a real source receives it)"
	noteStatusAnswered  = "answered by a real agent (--only source): delivery is from its spec's send to the forward"
	noteStatusNeverSeen = "never forwarded: no agent's answer to its spec came back (--only source)"
)

// notChecked says, for summary.json, what a run of one side cannot check.
func (s Side) notChecked() []string {
	switch s {
	case SideSource:
		return []string{
			"spec delivery: real agents receive the specs, so specs end as sent and spec_delivery_latency is empty; server>agent records are not played",
			"status replies: real agents send them; a forwarded status is matched to the next status the trace expects for its resource once its spec was sent, " +
				"its outcome's delivery is from that spec's send to the forward, and status_forward_latency is empty",
		}
	case SideAgents:
		return []string{
			"when specs were sent: a real source sends them, so specs end as delivered with no delivery latency, spec_delivery_latency is empty and send lateness covers only the agents' own scheduled events",
			"status forwards: a real source receives them, so statuses end as sent and server>source records are not played",
		}
	}
	return nil
}

// playsAgents reports whether this replay opens the agents' streams.
func (r *runner) playsAgents() bool { return r.cfg.Only != SideSource }

// playsSource reports whether this replay publishes specs and opens the
// sources' streams.
func (r *runner) playsSource() bool { return r.cfg.Only != SideAgents }

// otherSide gives a record the other side plays its outcome.
func (r *runner) otherSide(m recMeta) {
	r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherSide})
}

// expectSpec plays a source event under --only agents: the real source
// sends it, so the spec is only registered as awaited on its agent's
// stream, where its delivery fires the trace's statuses as usual.
func (r *runner) expectSpec(m recMeta, rec *format.Record) {
	k, err := maestro.ExtractKeys(rec.Data)
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument),
			Note: fmt.Sprintf("trace record %d: %v", m.index, err)})
		return
	}
	if k.ClusterName != "" && !r.cfg.Shard.Owns(k.ClusterName) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
		return
	}
	if !isSpecRequest(rec.EventType) {
		r.otherSide(m)
		return
	}
	s := &specState{meta: m, cluster: k.ClusterName, wireRID: r.remap.id(rec.ResourceID), external: true}
	r.tr.register(s)
	r.tr.awaitSpec(s)
}

// expectReply plays a status reply under --only source: a real agent
// sends it, so it is only registered as awaited on the source's stream.
func (r *runner) expectReply(m recMeta, rec *format.Record) {
	if !r.cfg.Shard.Owns(rec.Actor) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
		return
	}
	r.tr.awaitReply(&statusState{meta: m, agent: rec.Actor, external: true}, rec.Trigger, rec.HasTrigger)
}

// awaitSpec registers a spec a real source sends (--only agents) as
// awaited on its agent's stream: its delivery reports it, with no latency.
func (t *tracker) awaitSpec(s *specState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.published = true
	t.specTo(s, sent) // as if its call returned: its delivery reports it
	t.undelivered[s.wireRID] = append(t.undelivered[s.wireRID], s)
	t.pendingSpecs++
}

// maxEarly bounds the forwards kept per resource before the status they
// answer is read: real agents send more statuses than a trace holds, and
// those extra ones must not pile up.
const maxEarly = 16

// awaitReply registers a status reply a real agent sends (--only source):
// the next forward of its resource after its spec was sent answers it.
func (t *tracker) awaitReply(st *statusState, trigger uint64, has bool) {
	var out []outcomeOf
	t.mu.Lock()
	s := t.specByIdx[trigger]
	if s != nil {
		t.noteAnswer(st.meta.offset, s.meta.offset, true)
	}
	t.statusByIdx[st.meta.index] = st
	t.order = append(t.order, orderEntry{offset: st.meta.offset, index: st.meta.index, status: true})
	if !has || s == nil || s.phase == failed {
		o := format.Outcome{Status: format.OutcomeSkipped, Note: "not awaited: answers a record that was not replayed"}
		if s != nil {
			o = format.Outcome{Status: format.OutcomeNotTriggered, Note: "its spec was not sent"}
		}
		st.phase = failed // never counted: no move
		t.mu.Unlock()
		t.emit(st.meta, o)
		return
	}
	st.spec = s
	// As if its call returned: a real agent sends it. It holds no event
	// (not unsent) and holds no later spec back (no open reply).
	st.phase = sent
	t.pendingStatuses++
	t.awaited++
	if at, ok := t.takeEarly(s); ok {
		out = t.answered(st, at)
	} else {
		if t.awaiting == nil {
			t.awaiting = map[string][]*statusState{}
		}
		t.awaiting[s.wireRID] = append(t.awaiting[s.wireRID], st)
	}
	t.mu.Unlock()
	t.emitAll(out)
}

// takeEarly takes the first forward of s's resource that came after s was
// sent and before a status to match it was read. Call with t.mu held.
func (t *tracker) takeEarly(s *specState) (time.Time, bool) {
	if !s.published {
		return time.Time{}, false
	}
	e := t.early[s.wireRID]
	for len(e) > 0 && e[0].Before(s.sentAt) {
		e = e[1:] // answered something before this spec
	}
	if len(e) == 0 {
		delete(t.early, s.wireRID)
		return time.Time{}, false
	}
	at := e[0]
	if len(e) == 1 {
		delete(t.early, s.wireRID)
	} else {
		t.early[s.wireRID] = e[1:]
	}
	t.unexpectedStatuses--
	return at, true
}

// forwardedByResource handles a forwarded status under --only source:
// real agents minted its sequence id, so it answers the first status the
// trace awaits for its resource whose spec was sent. One that matches
// nothing yet is counted unexpected and kept a while, in case its status
// record is read later.
func (t *tracker) forwardedByResource(k maestro.Keys, at time.Time) (time.Duration, bool) {
	t.mu.Lock()
	q := t.awaiting[k.ResourceID]
	for len(q) > 0 && q[0].phase.reported() {
		q = q[1:]
	}
	if len(q) == 0 || !q[0].spec.published {
		t.setAwaiting(k.ResourceID, q)
		t.unexpectedStatuses++
		if t.early == nil {
			t.early = map[string][]time.Time{}
		}
		if e := t.early[k.ResourceID]; len(e) < maxEarly {
			t.early[k.ResourceID] = append(e, at)
		}
		t.mu.Unlock()
		return 0, false
	}
	st := q[0]
	t.setAwaiting(k.ResourceID, q[1:])
	out := t.answered(st, at)
	t.mu.Unlock()
	t.emitAll(out)
	return 0, false
}

func (t *tracker) setAwaiting(rid string, q []*statusState) {
	if len(q) == 0 {
		delete(t.awaiting, rid)
	} else {
		t.awaiting[rid] = q
	}
}

// answered ends a status a real agent sent, forwarded at at. Its delivery
// runs from its spec's send, the only send this replay saw. Call with
// t.mu held.
func (t *tracker) answered(st *statusState, at time.Time) []outcomeOf {
	st.fwdAt, st.sentAt = at, st.spec.sentAt
	t.statusTo(st, delivered)
	t.awaited--
	d := st.forwardDelay()
	out := []outcomeOf{{st.meta, format.Outcome{Status: format.OutcomeDelivered, Delivery: d, Note: noteStatusAnswered}}}
	for _, e := range st.expects {
		out = append(out, outcomeOf{e, format.Outcome{Status: format.OutcomeDelivered, Delivery: d}})
	}
	st.expects = nil
	return out
}

// backlog is what the target still owes this replay, for the backpressure
// at --max: pending less the statuses awaited from real agents (--only
// source), which are the fleet's to send, not the target's queue, and hold
// no event; a sink that answers Publish and forwards nothing (bench/ghz.sh)
// must not stop the reading.
func (t *tracker) backlog() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingSpecs + t.pendingStatuses - t.awaited + len(t.gated)
}

// deliveredCount returns how many awaited specs were delivered so far.
func (t *tracker) deliveredCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deliveries
}
