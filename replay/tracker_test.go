package replay

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// trackerHarness collects outcomes and fired statuses.
type trackerHarness struct {
	mu    sync.Mutex
	outs  map[uint64][]format.Outcome
	fired []*statusState
	tr    *tracker
}

func newHarness() *trackerHarness {
	h := &trackerHarness{outs: map[uint64][]format.Outcome{}}
	h.tr = newTracker(func(m recMeta, o format.Outcome) {
		h.mu.Lock()
		h.outs[m.index] = append(h.outs[m.index], o)
		h.mu.Unlock()
	}, func(s *statusState) {
		h.mu.Lock()
		h.fired = append(h.fired, s)
		h.mu.Unlock()
	}, func(d time.Duration) time.Duration { return d })
	return h
}

func (h *trackerHarness) only(t *testing.T, i uint64, want format.OutcomeStatus) format.Outcome {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.outs[i]) != 1 || h.outs[i][0].Status != want {
		t.Fatalf("record %d: outcomes %+v, want one %s", i, h.outs[i], want)
	}
	return h.outs[i][0]
}

// sending registers s as sent at t0, its Publish call not yet returned.
func (h *trackerHarness) sending(s *specState, t0 time.Time) {
	s.sentAt = t0
	h.tr.register(s)
	h.tr.addSpec(s)
}

func spec(i uint64, rid string) *specState {
	return &specState{meta: recMeta{index: i, offset: time.Duration(i) * time.Second, flow: format.FlowSourceToServer,
		rid: rid, eventType: maestro.TypeSpecCreate}, wireRID: rid, cluster: "c1"}
}

// The delivery may arrive before the Publish call returns, and before the
// status that answers it is read: every order gives the same outcomes.
func TestTrackerAnyOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	h, s := newHarness(), spec(0, "r1")
	h.sending(s, t0)
	if d, ok := h.tr.delivered(maestro.Keys{ResourceID: "r1", ResourceVersion: 3, HasResourceVersion: true}, t0.Add(5*time.Millisecond)); !ok || d != 5*time.Millisecond {
		t.Fatalf("delivered: %v %v", d, ok)
	}
	if len(h.outs[0]) != 0 {
		t.Fatal("spec reported before its Publish returned")
	}
	h.tr.specSent(s, time.Millisecond, 0, "")
	o := h.only(t, 0, format.OutcomeDelivered)
	if o.Delivery != 5*time.Millisecond || o.Latency != time.Millisecond {
		t.Fatalf("spec outcome %+v", o)
	}
	// The status arrives after the delivery: it fires at once, at
	// delivery + delay, with the delivered version.
	st := &statusState{meta: recMeta{index: 1, offset: 2 * time.Second, flow: format.FlowAgentToServer}, delay: time.Second}
	h.tr.addStatus(st, 0, true)
	if len(h.fired) != 1 || !h.fired[0].due.Equal(t0.Add(5*time.Millisecond+time.Second)) {
		t.Fatalf("fired %v", h.fired)
	}
	if v, has := h.tr.statusVersion(st); v != 3 || !has {
		t.Fatalf("status version %d %v", v, has)
	}
	st.seq, st.sentAt = "42", t0.Add(2*time.Second)
	h.tr.statusSending(st)
	// Forwarded before the status's Publish returns.
	h.tr.forwarded(maestro.Keys{SequenceID: "42"}, st.sentAt.Add(7*time.Millisecond))
	h.tr.forwarded(maestro.Keys{SequenceID: "42"}, st.sentAt.Add(9*time.Millisecond))
	h.tr.statusSent(st, time.Millisecond, 0, "")
	if o := h.only(t, 1, format.OutcomeDelivered); o.Delivery != 7*time.Millisecond {
		t.Fatalf("status outcome %+v", o)
	}
	if h.tr.duplicateForwards != 1 || h.tr.pending() != 0 || h.tr.holding() != 0 {
		t.Fatalf("duplicates %d, pending %d", h.tr.duplicateForwards, h.tr.pending())
	}
	// Late records that expect the deliveries.
	h.tr.expectDelivery(recMeta{index: 2}, 0, true)
	h.tr.expectForward(recMeta{index: 3}, 1, true)
	h.only(t, 2, format.OutcomeDelivered)
	h.only(t, 3, format.OutcomeDelivered)
}

// A failed spec ends its status and expectations; finish reports what never
// arrived; prune forgets finished states.
func TestTrackerFailuresAndFinish(t *testing.T) {
	t.Parallel()
	h := newHarness()
	bad := spec(0, "r1")
	h.tr.register(bad)
	h.tr.addSpec(bad)
	h.tr.expectDelivery(recMeta{index: 1}, 0, true)
	h.tr.addStatus(&statusState{meta: recMeta{index: 2}}, 0, true)
	h.tr.specSent(bad, time.Millisecond, 14, "unavailable")
	if o := h.only(t, 0, format.OutcomeFailed); o.Code != 14 || o.Note != "unavailable" {
		t.Fatalf("failed spec outcome %+v", o)
	}
	h.only(t, 1, format.OutcomeMissing)
	h.only(t, 2, format.OutcomeNotTriggered) // a status whose spec failed: not skipped (outside shard or filter)

	lost := spec(3, "r2")
	h.tr.register(lost)
	h.tr.addSpec(lost)
	h.tr.specSent(lost, time.Millisecond, 0, "")
	h.tr.addStatus(&statusState{meta: recMeta{index: 4, offset: 4 * time.Second}}, 3, true)
	h.tr.addStatus(&statusState{meta: recMeta{index: 5}}, 99, true) // answers nothing replayed
	h.only(t, 5, format.OutcomeSkipped)
	// A deleting resync answer is not the delivery of a create.
	if _, ok := h.tr.delivered(maestro.Keys{ResourceID: "r2", Deleting: true}, time.Now()); ok {
		t.Fatal("a delete matched a pending create")
	}
	if h.tr.pending() != 2 || h.tr.holding() != 2 {
		t.Fatalf("pending %d, holding %d, want 2 and 2", h.tr.pending(), h.tr.holding())
	}
	h.tr.finish()
	h.only(t, 3, format.OutcomeMissing)
	h.only(t, 4, format.OutcomeNotTriggered)
	if h.tr.pending() != 0 {
		t.Fatalf("pending after finish: %d", h.tr.pending())
	}
	h.tr.prune(time.Hour)
	if len(h.tr.specByIdx) != 0 || len(h.tr.statusByIdx) != 0 {
		t.Fatalf("prune kept %d specs, %d statuses", len(h.tr.specByIdx), len(h.tr.statusByIdx))
	}
}

// After a --limit or --duration cut the replay reads on only as far as the
// answers seen so far suggest: twice the longest gap between a spec and a
// record that answers it (delivery, status, forward), plus a second, never
// more than replyHorizon, and all of replyHorizon before any status reply
// (deliveries alone say nothing of how late replies come).
func TestTrackerAnswerSpan(t *testing.T) {
	t.Parallel()
	h := newHarness()
	if got := h.tr.answerSpan(); got != replyHorizon {
		t.Fatalf("span before any answer = %v, want %v", got, replyHorizon)
	}
	s := spec(10, "r1") // offset 10 s
	h.tr.register(s)
	h.tr.expectDelivery(recMeta{index: 11, offset: 11 * time.Second, flow: format.FlowServerToAgent}, 10, true)
	if got := h.tr.answerSpan(); got != replyHorizon {
		t.Fatalf("span after a delivery but no reply = %v, want %v", got, replyHorizon)
	}
	st := &statusState{meta: recMeta{index: 12, offset: 14 * time.Second, flow: format.FlowAgentToServer}}
	h.tr.addStatus(st, 11, true) // answers the delivery record, 4 s after the spec
	if got := h.tr.answerSpan(); got != 9*time.Second {
		t.Fatalf("span after a reply 4 s after its spec = %v, want 9s", got)
	}
	h.tr.expectForward(recMeta{index: 13, offset: 16 * time.Second, flow: format.FlowServerToSource}, 12, true)
	if got := h.tr.answerSpan(); got != 13*time.Second {
		t.Fatalf("span after a forward 6 s after its spec = %v, want 13s", got)
	}
	late := spec(20, "r2")
	h.tr.register(late)
	h.tr.expectDelivery(recMeta{index: 21, offset: 20*time.Second + replyHorizon, flow: format.FlowServerToAgent}, 20, true)
	if got := h.tr.answerSpan(); got != replyHorizon {
		t.Fatalf("span after an answer a whole horizon late = %v, want %v", got, replyHorizon)
	}
}

// A status still queued on the dispatcher (or publishing) when finish runs
// keeps the one outcome finish gave it: the dispatcher may fire it after
// finish, and the call fails or is skipped as the streams close. A status
// whose call was in flight is missing, not "not sent", or delivered if its
// forward came.
func TestTrackerStatusAfterFinish(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	h, s := newHarness(), spec(0, "r1")
	h.sending(s, t0)
	h.tr.specSent(s, time.Millisecond, 0, "")
	h.tr.delivered(maestro.Keys{ResourceID: "r1"}, t0.Add(time.Millisecond))
	queued := &statusState{meta: recMeta{index: 1, flow: format.FlowAgentToServer}}
	publishing := &statusState{meta: recMeta{index: 2, flow: format.FlowAgentToServer}}
	forwarded := &statusState{meta: recMeta{index: 3, flow: format.FlowAgentToServer}}
	h.tr.addStatus(queued, 0, true)
	h.tr.addStatus(publishing, 0, true)
	h.tr.addStatus(forwarded, 0, true)
	// Being prepared by the dispatcher when finish runs: its call starts
	// after finish (and fails as the streams close).
	firing := &statusState{meta: recMeta{index: 4, flow: format.FlowAgentToServer}}
	h.tr.addStatus(firing, 0, true)
	publishing.seq, forwarded.seq = "7", "8"
	h.tr.statusSending(publishing)
	h.tr.statusSending(forwarded)
	if _, ok := h.tr.forwarded(maestro.Keys{SequenceID: "8"}, t0.Add(time.Second)); !ok {
		t.Fatal("forward of status 8 not matched")
	}
	h.tr.finish()
	h.tr.statusNotSent(queued, format.Outcome{Status: format.OutcomeNotSent, Note: "not sent: the run ended"})
	h.tr.statusSent(publishing, time.Millisecond, 14, "unavailable")
	h.tr.statusSent(forwarded, time.Millisecond, 0, "")
	firing.seq = "9"
	if h.tr.statusSending(firing) {
		h.tr.statusSent(firing, time.Millisecond, 1, "context canceled")
	}
	if o := h.only(t, 1, format.OutcomeNotSent); o.Note != "not sent: still waiting at the end of the run" {
		t.Fatalf("queued status: %+v", o)
	}
	if o := h.only(t, 4, format.OutcomeNotSent); o.Note != "not sent: still waiting at the end of the run" {
		t.Fatalf("status fired after finish: %+v", o)
	}
	if o := h.only(t, 2, format.OutcomeMissing); !strings.Contains(o.Note, noteCallInFlight) {
		t.Fatalf("status in flight: %+v", o)
	}
	if o := h.only(t, 3, format.OutcomeDelivered); o.Note != noteCallInFlight {
		t.Fatalf("status in flight, forwarded: %+v", o)
	}
	if p := h.tr.pending(); p != 0 {
		t.Fatalf("pending %d after finish", p)
	}
}

// A resource's next spec waits until the one before is delivered and its
// status sent, even when that spec settled before its status was read; a
// spec still waiting when the run ends is reported not sent.
func TestTrackerGatesTheNextSpecOfAResource(t *testing.T) {
	t.Parallel()
	h := newHarness()
	t0 := time.Now()
	create := spec(0, "r1")
	h.sending(create, t0)
	h.tr.specSent(create, time.Millisecond, 0, "")
	h.tr.delivered(maestro.Keys{ResourceID: "r1", ResourceVersion: 1, HasResourceVersion: true}, t0.Add(time.Millisecond))
	h.only(t, 0, format.OutcomeDelivered)

	// Its status is read after the create settled, before the update.
	st := &statusState{meta: recMeta{index: 1, offset: time.Second, flow: format.FlowAgentToServer}}
	h.tr.addStatus(st, 0, true)
	update := spec(2, "r1")
	update.meta.eventType = maestro.TypeSpecUpdate
	h.tr.register(update)
	if h.tr.gate(update) {
		t.Fatal("the update may go before the create's status was sent")
	}
	other := spec(3, "r2")
	h.tr.register(other)
	if !h.tr.gate(other) {
		t.Fatal("another resource's spec waits")
	}
	if h.tr.pending() < 1 {
		t.Fatal("a gated spec is not pending")
	}
	go func() {
		st.seq, st.sentAt = "7", t0
		h.tr.statusSending(st)
		h.tr.statusSent(st, time.Millisecond, 0, "")
	}()
	if !h.tr.ungate(update) {
		t.Fatal("the update was given up")
	}

	// The delete waits for the update, which never settles.
	h.sending(update, t0)
	del := spec(4, "r1")
	del.meta.eventType = maestro.TypeSpecDelete
	h.tr.register(del)
	if h.tr.gate(del) {
		t.Fatal("the delete may go before the update was delivered")
	}
	done := make(chan bool)
	go func() { done <- h.tr.ungate(del) }()
	h.tr.finish()
	if <-done {
		t.Fatal("a spec still gated at the end was sent")
	}
	if o := h.only(t, 4, format.OutcomeNotSent); !strings.Contains(o.Note, "never settled") {
		t.Errorf("gated spec's note: %q", o.Note)
	}
	h.only(t, 2, format.OutcomeMissing)
}
