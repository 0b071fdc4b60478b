package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// sendPath is what the send path (release) holds besides the accounting:
// the in-flight slots, the publishes in flight, the events' buffers.
type sendPath struct {
	// async says calls start on the releasing goroutine (startPublish).
	async bool
	sem   chan struct{} // Publish calls in flight: specs and other sends
	stSem chan struct{} // Publish calls in flight: status replies
	sends counter       // publish goroutines in flight
	bufs  bufPool       // buffers of the events being sent
	// idle are the channels of the publishing goroutines waiting for
	// their next send, newest last (see publishOn).
	idleMu sync.Mutex
	idle   []chan publishing
}

func newSendPath(inflight int, async bool) sendPath {
	return sendPath{async: async, sem: make(chan struct{}, inflight), stSem: make(chan struct{}, inflight)}
}

// take and give hold an in-flight slot of sem: r.sem for specs and other
// sends, r.stSem for status replies, which have their own slots so that a
// flood of spec publishes at --max cannot starve the replies (and pile
// them up in memory).
func (r *runner) take(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		r.m.inflight.Inc()
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *runner) give(sem chan struct{}) {
	<-sem
	r.m.inflight.Dec()
}

// call publishes one event and returns the call's latency, its gRPC code
// (0 when OK) and the error message. The latency runs from start, the
// instant the schedule released the send: the time until the goroutine
// making the call runs is part of it, not hidden between the send
// lateness and the call. The call runs in c's context, under parent.
func (r *runner) call(c *caller, parent context.Context, cc rpcClient, addr string, ce []byte, start time.Time) (time.Duration, uint32, string) {
	if cc == nil {
		return noConnection(addr)
	}
	err := cc.publish(c.arm(parent, r.cfg.PublishTimeout), ce)
	return r.called(addr, start, err, c.disarm())
}

// noConnection is the result of a call to addr, which could not be
// dialed.
func noConnection(addr string) (time.Duration, uint32, string) {
	return 0, uint32(codes.Unavailable), "no connection to " + addr
}

// called records a Publish call's end and returns its latency (from start),
// its gRPC code and its error message; timedOut says --publish-timeout
// ended it.
func (r *runner) called(addr string, start time.Time, err error, timedOut bool) (time.Duration, uint32, string) {
	if err != nil && timedOut {
		err = status.Errorf(codes.DeadlineExceeded, "no answer within %v (--publish-timeout)", r.cfg.PublishTimeout)
	}
	// The call's latency is real time whatever clock paces the run (the
	// target answers in real time); the instant of the last send is the
	// run's, as T0 is, since the summary reports one from the other.
	lat := time.Since(start)
	r.published(addr, lat, r.clock.Now(), err)
	if err != nil {
		st := status.Convert(err)
		return lat, uint32(st.Code()), st.Message()
	}
	return lat, 0, ""
}

// caller is what a goroutine making Publish calls keeps from one call to
// the next: the context a call runs in and the timer that cancels it after
// --publish-timeout. --publish-timeout is a timer that cancels the call,
// not a deadline on its context: gRPC would send a deadline to the target
// as a grpc-timeout header, which the SDK's clients do not send (their
// Publish carries their caller's context), and for which the target arms a
// timer of its own on every call. The context and the timer are made again
// only when one is spent (the timer fired, or the parent ended): made for
// every call, they were several allocations a call, and each call entered
// and left the run's context's set of children under its lock. The zero
// caller is ready; release it when done.
type caller struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

// arm returns the context for the next call under parent, with the
// timeout running.
func (c *caller) arm(parent context.Context, timeout time.Duration) context.Context {
	if c.ctx == nil || c.parent != parent || c.ctx.Err() != nil {
		c.release()
		c.parent = parent
		c.ctx, c.cancel = context.WithCancelCause(parent)
		cancel := c.cancel // the timer cancels this context, not a later one
		c.timer = time.AfterFunc(timeout, func() { cancel(errPublishTimeout) })
		return c.ctx
	}
	c.timer.Reset(timeout)
	return c.ctx
}

// disarm stops the timeout after a call and reports whether it had fired
// first; the context is spent then, and the next arm makes another.
func (c *caller) disarm() (timedOut bool) {
	if c.timer.Stop() {
		return false
	}
	c.ctx = nil // released by its timer's cancel
	return true
}

// release cancels the caller's context, if any.
func (c *caller) release() {
	if c.ctx != nil {
		c.timer.Stop()
		c.cancel(nil)
	}
	c.ctx = nil
}

// errPublishTimeout is the cause of a Publish call cancelled because it
// took longer than --publish-timeout.
var errPublishTimeout = errors.New("replay: publish timeout")

// isSpecRequest reports whether a source event is a spec the agent must
// receive (create, update, delete); status resync requests are not.
func isSpecRequest(t string) bool {
	return t == maestro.TypeSpecCreate || t == maestro.TypeSpecUpdate || t == maestro.TypeSpecDelete
}

// noteInterrupted is the note of an event the run ended before sending.
const noteInterrupted = "not sent: the run was interrupted"

// sendSpec prepares a source event and hands it to the pacer, which
// publishes it at its due time.
func (r *runner) sendSpec(ctx context.Context, m recMeta, rec *format.Record, due time.Duration) {
	k, err := maestro.ExtractKeys(rec.Data)
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument),
			Note: fmt.Sprintf("trace record %d: %v", m.index, err)})
		return
	}
	if k.ClusterName != "" && r.otherShard(m, k.ClusterName) {
		return
	}
	addr := r.cfg.SourceAddrs[0]
	if k.ClusterName != "" {
		addr = r.sourceAddrFor(r.agentFor(k.ClusterName))
	}
	src := r.sourceFor(rec.Actor, addr)
	wireRID := r.remap.id(rec.ResourceID)
	ce, err := r.remap.event(r.bufs.get(len(rec.Data)), rec.Data, rec.ResourceID, wireRID, 0, false, "")
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
		return
	}
	tracked := isSpecRequest(rec.EventType)
	s := &specState{meta: m, cluster: k.ClusterName, wireRID: wireRID}
	if tracked {
		// Known before the records that answer it are read.
		r.tr.register(s)
	}
	if r.idmap != nil && rec.EventType == maestro.TypeSpecCreate {
		// One line per created resource; only the reading goroutine writes.
		fmt.Fprintf(r.idmap, "%s\t%s\n", rec.ResourceID, s.wireRID)
	}
	j := sendJob{due: r.t0.Add(due), slots: r.sem, prepare: func(late time.Duration, sentAt time.Time) (outCall, bool) {
		if tracked {
			s.sentAt, s.lateness = sentAt, late
			r.tr.addSpec(s)
		}
		return outCall{cc: src.cc, addr: addr, ce: ce}, true
	}, sent: func(late, lat time.Duration, code uint32, msg string) {
		r.specsSent.Add(1)
		if tracked {
			r.tr.specSent(s, lat, code, msg)
			return
		}
		r.out.emit(m, plainOutcome(late, lat, code, msg))
	}}
	if !tracked {
		j.notSent = func(o format.Outcome) { r.out.emit(m, o) }
	} else {
		j.notSent = func(o format.Outcome) { r.tr.specNotSent(s, o) }
		// The resource's spec before this one must be settled first: a
		// spec that waits goes when it is, timed from then (its lateness
		// stays the pacer's), or never if the run ends first (finish
		// reports it).
		j.gate = func(late time.Duration) bool {
			s.lateness = late
			return r.tr.gate(s)
		}
		j.ungate = func() bool { return r.tr.ungate(s) }
	}
	r.pace(ctx, j.due, func() { j.notSent(r.notSentOutcome()) }, func() { r.release(ctx, j) })
}

func plainOutcome(late, lat time.Duration, code uint32, msg string) format.Outcome {
	if code != 0 {
		return format.Outcome{Status: format.OutcomeFailed, Code: code, Lateness: late, Latency: lat, Note: msg}
	}
	return format.Outcome{Status: format.OutcomeSent, Lateness: late, Latency: lat}
}

// sendPlain prepares an agent event that answers nothing (a spec resync
// request, a status without a trigger) and hands it to the pacer.
func (r *runner) sendPlain(ctx context.Context, m recMeta, rec *format.Record, due time.Duration) {
	if r.otherShard(m, rec.Actor) {
		return
	}
	a := r.agentFor(rec.Actor)
	seq := ""
	if rec.EventType == maestro.TypeStatusUpdate {
		seq = r.seq.Next()
	}
	ce, err := r.remap.event(r.bufs.get(len(rec.Data)), rec.Data, rec.ResourceID, r.remap.id(rec.ResourceID), 0, false, seq)
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
		return
	}
	isResync := rec.EventType == maestro.TypeSpecResyncRequest
	j := sendJob{due: r.t0.Add(due), slots: r.sem, notSent: func(o format.Outcome) { r.out.emit(m, o) }}
	j.prepare = func(time.Duration, time.Time) (outCall, bool) {
		if isResync {
			// The agent lists what it holds now, under the ids on the
			// wire: the trace's list names the trace's ids and versions.
			req, err := a.resyncRequest()
			if err != nil {
				r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
				return outCall{}, false
			}
			r.bufs.put(ce)
			ce = req
		}
		return outCall{cc: a.cc, addr: a.addr, ce: ce}, true
	}
	j.sent = func(late, lat time.Duration, code uint32, msg string) {
		if isResync && code == 0 {
			r.resynced()
		}
		r.out.emit(m, plainOutcome(late, lat, code, msg))
	}
	r.pace(ctx, j.due, func() { j.notSent(r.notSentOutcome()) }, func() { r.release(ctx, j) })
}

// addStatus hands a status reply to the tracker, which fires it once the
// spec it answers has reached the agent.
func (r *runner) addStatus(m recMeta, rec *format.Record) {
	if r.otherShard(m, rec.Actor) {
		return
	}
	// A copy: a reply can wait long for its spec, and a slice of the
	// record would keep its whole trace segment in memory.
	st := &statusState{meta: m, agent: rec.Actor, delay: rec.Delay, data: append(r.bufs.get(len(rec.Data)), rec.Data...)}
	r.tr.addStatus(st, rec.Trigger, true)
}

// statusWireRID is the resource id a status is sent under: that of the
// spec it answers, mapped when the spec was read, when both name one
// resource (as a status names its spec's); else mapped now.
func (r *runner) statusWireRID(st *statusState) string {
	if st.spec != nil && st.spec.meta.rid == st.meta.rid {
		return st.spec.wireRID
	}
	return r.remap.id(st.meta.rid)
}

// fireStatus runs on the dispatcher when a status is due: it rewrites the
// version and sequence id and publishes it on the agent's connection.
func (r *runner) fireStatus(st *statusState) {
	a := r.agentFor(st.agent)
	r.release(r.streamCtx, sendJob{due: st.due, slots: r.stSem, reply: true,
		notSent: func(o format.Outcome) { r.tr.statusNotSent(st, o) },
		prepare: func(late time.Duration, _ time.Time) (outCall, bool) {
			version, has := r.tr.statusVersion(st)
			seq := r.seq.Next()
			ce, err := r.remap.event(r.bufs.get(len(st.data)), st.data, st.meta.rid, r.statusWireRID(st), version, has, seq)
			r.bufs.put(st.data)
			st.data = nil
			if err != nil {
				r.tr.statusNotSent(st, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
				return outCall{}, false
			}
			st.seq, st.sentAt, st.lateness = seq, r.clock.Now(), late
			if !r.tr.statusSending(st) {
				r.recycle(ce, 0)
				return outCall{}, false
			}
			return outCall{cc: a.cc, addr: a.addr, ce: ce}, true
		},
		sent: func(_, lat time.Duration, code uint32, msg string) {
			r.statusesSent.Add(1)
			r.tr.statusSent(st, lat, code, msg)
		}})
}

// otherShard reports whether another shard plays cluster, and then gives
// the record m that outcome and remembers it, so the records that answer
// it (deliveries and forwards a recorded trace holds) go to that shard too.
func (r *runner) otherShard(m recMeta, cluster string) bool {
	if r.cfg.Shard.Owns(cluster) {
		return false
	}
	r.elsewhere.add(m.index)
	r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
	return true
}

// answersOtherShard reports whether rec answers a record another shard
// plays, and then gives the record m the other-shard outcome too.
func (r *runner) answersOtherShard(m recMeta, rec *format.Record) bool {
	if !rec.HasTrigger || !r.elsewhere.has(rec.Trigger) {
		return false
	}
	r.elsewhere.add(m.index)
	r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
	return true
}

// indexSet is a set of trace record indexes, safe for concurrent use.
type indexSet struct {
	mu   sync.Mutex
	bits []uint64
}

func (s *indexSet) add(i uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := int(i / 64); w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	s.bits[i/64] |= 1 << (i % 64)
}

func (s *indexSet) has(i uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(i/64) < len(s.bits) && s.bits[i/64]&(1<<(i%64)) != 0
}

// notSentOutcome is the outcome of a send the run ended before.
func (r *runner) notSentOutcome() format.Outcome {
	return format.Outcome{Status: format.OutcomeNotSent, Note: r.notSentNote()}
}

// noteRunEnded is the note of a status reply that fell due after the
// streams were closed.
const noteRunEnded = "not sent: the run ended"

// sendJob is one event on the send path (release). Specs and other source
// events, agent events that answer nothing and status replies differ only
// in these fields.
type sendJob struct {
	due   time.Time
	slots chan struct{} // r.sem, or r.stSem for a status reply
	// reply says the event answers another: its lateness is the replies',
	// not the schedule's, and a run that ended before it notes so.
	reply bool
	// notSent gives the event the outcome of a send that never reached
	// its Publish call (the run ended first, or it was dropped as late).
	notSent func(format.Outcome)
	// gate, when set, reports whether the event, late by late, may go
	// now; if not, ungate waits until it may (or reports false: never).
	gate   func(late time.Duration) bool
	ungate func() bool
	// prepare readies the call when the event is released, late by late,
	// at sentAt on the run's clock; it reports false when the event
	// ended without a call (it gave the outcome itself).
	prepare func(late time.Duration, sentAt time.Time) (outCall, bool)
	// sent takes the call's result: its latency, gRPC code (0 when OK)
	// and error message. It may run on a connection's reader goroutine.
	sent func(late, lat time.Duration, code uint32, msg string)
}

// outCall is the Publish call a released event makes.
type outCall struct {
	cc   rpcClient
	addr string
	ce   []byte
}

// release runs at an event's due time (on the pacer, or the dispatcher for
// a status reply): it takes an in-flight slot, measures the lateness,
// drops the event if it is later than --late-drop, and starts the publish.
func (r *runner) release(ctx context.Context, j sendJob) {
	if !r.take(ctx, j.slots) {
		if j.reply {
			j.notSent(format.Outcome{Status: format.OutcomeNotSent, Note: noteRunEnded})
		} else {
			j.notSent(r.notSentOutcome())
		}
		return
	}
	// The send is released here: lateness is measured before anything
	// else, and the Publish latency runs from this instant.
	now, released := r.clock.Now(), time.Now()
	late := now.Sub(j.due)
	r.lateness(late, j.reply, !r.cfg.Max, r.cfg.LateWarn)
	if r.cfg.LateDrop > 0 && !r.cfg.Max && late > r.cfg.LateDrop {
		r.give(j.slots)
		j.notSent(format.Outcome{Status: format.OutcomeDroppedLate, Lateness: late})
		return
	}
	if j.gate != nil && !j.gate(late) {
		go func() {
			if !j.ungate() {
				r.give(j.slots)
				return
			}
			r.sends.add()
			r.startPublish(publishing{j, late, r.clock.Now(), time.Now()})
		}()
		return
	}
	r.sends.add()
	r.startPublish(publishing{j, late, now, released})
}

// startPublish starts a released event's call, holding its slot and a
// count of r.sends, which its end gives back. A transport that can start
// a call without waiting for its answer (grpclite) starts it here, on the
// pacer or the dispatcher: no goroutine is woken to make it, and the call
// ends on the connection's reader. gRPC-go's calls are handed to a
// publishing goroutine (publishOn).
func (r *runner) startPublish(p publishing) {
	if !r.async {
		r.publishOn(p)
		return
	}
	call, ok := p.j.prepare(p.late, p.sentAt)
	if !ok {
		r.give(p.j.slots)
		r.sends.done()
		return
	}
	end := func(lat time.Duration, code uint32, msg string) {
		r.recycle(call.ce, code)
		p.j.sent(p.late, lat, code, msg)
		r.give(p.j.slots)
		r.sends.done()
	}
	if call.cc == nil {
		end(noConnection(call.addr))
		return
	}
	call.cc.publishAsync(call.ce, r.cfg.PublishTimeout, func(err error, timedOut bool) {
		end(r.called(call.addr, p.released, err, timedOut))
	})
}

// publishNow makes p's call on the calling goroutine (whose caller c is).
func (r *runner) publishNow(c *caller, p publishing) {
	call, ok := p.j.prepare(p.late, p.sentAt)
	if !ok {
		return
	}
	lat, code, msg := r.call(c, r.streamCtx, call.cc, call.addr, call.ce, p.released)
	r.recycle(call.ce, code)
	p.j.sent(p.late, lat, code, msg)
}

// publishing is a released send on its way to a publishing goroutine.
type publishing struct {
	j                sendJob
	late             time.Duration
	sentAt, released time.Time
}

// maxIdlePublishers bounds the goroutines that wait for the next send
// after their call: enough for --max's default in-flight calls, few
// enough that a burst of a paced run's thousands leaves no crowd behind.
const maxIdlePublishers = 256

// publishOn runs p's call on a goroutine that finished a call before and
// waits for the next, or on a new one when none waits. A Publish runs
// deep in gRPC, so a new goroutine grows its stack (copies it) on every
// call; one that is reused keeps its stack grown.
func (r *runner) publishOn(p publishing) {
	r.idleMu.Lock()
	if n := len(r.idle); n > 0 {
		next := r.idle[n-1]
		r.idle = r.idle[:n-1]
		next <- p // buffered, and sent under the lock: see publisher
		r.idleMu.Unlock()
		return
	}
	r.idleMu.Unlock()
	go r.publisher(p)
}

// publisher runs p's call, then the calls handed to it while it waits
// (up to maxIdlePublishers wait), until the run's streams end. It offers
// itself for the next send before its call gives its in-flight slot back,
// so a send released with that slot finds it waiting: there are never
// more publishing goroutines than slots.
func (r *runner) publisher(p publishing) {
	next := make(chan publishing, 1)
	var c caller
	defer c.release()
	for {
		r.publishNow(&c, p)
		waits := r.offer(next)
		r.give(p.j.slots)
		r.sends.done()
		if !waits {
			return
		}
		select {
		case p = <-next:
		case <-r.streamCtx.Done():
			if r.withdraw(next) {
				return
			}
			p = <-next // handed a send before the streams ended: run it
		}
	}
}

// offer puts a publishing goroutine's channel among the idle ones, unless
// maxIdlePublishers wait already.
func (r *runner) offer(next chan publishing) bool {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	if len(r.idle) >= maxIdlePublishers {
		return false
	}
	r.idle = append(r.idle, next)
	return true
}

// withdraw takes a publishing goroutine's channel from the idle ones and
// reports whether it was there; if not, publishOn has sent it a send.
func (r *runner) withdraw(next chan publishing) bool {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	for i, c := range r.idle {
		if c == next {
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
			return true
		}
	}
	return false
}

// idlePublishers is how many publishing goroutines wait for a send.
func (r *runner) idlePublishers() int {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	return len(r.idle)
}

// bufPool recycles the byte buffers of the events the replay sends. Every
// event is copied out of the trace (which is read with reused buffers) and
// a status is patched into a second buffer at send time: a full replay
// made 3 GB of garbage this way without the pool, and the garbage
// collection it cost was a large share of the replayer's CPU.
type bufPool struct {
	p sync.Pool // of *[]byte holding a buffer
	// holders keeps the *[]byte that get emptied, for put to fill again:
	// a *[]byte made at every put cost one allocation per send.
	holders sync.Pool
}

// get returns an empty buffer with room for n bytes and a few patched
// attributes.
func (b *bufPool) get(n int) []byte {
	n += 512
	if v, ok := b.p.Get().(*[]byte); ok {
		buf := *v
		*v = nil
		b.holders.Put(v)
		if cap(buf) >= n {
			return buf[:0]
		}
	}
	return make([]byte, 0, (n+4095)&^4095)
}

// put gives a buffer back; the caller must not use it afterwards.
func (b *bufPool) put(buf []byte) {
	if cap(buf) == 0 || cap(buf) > maxPooledBuffer {
		return
	}
	v, ok := b.holders.Get().(*[]byte)
	if !ok {
		v = new([]byte)
	}
	*v = buf
	b.p.Put(v)
}

// recycle returns a sent event's buffer to the pool once gRPC is surely
// done with it: after a call that succeeded (the server answered, so it
// had the whole request). A call that failed may have been cut off while
// gRPC was still writing the buffer; that one is left to the collector.
func (r *runner) recycle(ce []byte, code uint32) {
	if code == 0 {
		r.bufs.put(ce)
	}
}

// maxPooledBuffer keeps an odd huge event from staying in the pool.
const maxPooledBuffer = 256 << 10

// counter counts goroutines in flight. Unlike sync.WaitGroup it may be
// incremented while someone waits for zero (statuses fire during the
// settle wait).
type counter struct {
	mu sync.Mutex
	n  int64
	// idle is closed when n falls to zero. It is made by the first wait
	// while n is not zero (nil otherwise): one made at every rise from
	// zero cost an allocation per send of a paced run.
	idle chan struct{}
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *counter) done() {
	c.mu.Lock()
	c.n--
	if c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
}

// wait returns once nothing is in flight.
func (c *counter) wait() {
	for {
		c.mu.Lock()
		if c.n == 0 {
			c.mu.Unlock()
			return
		}
		if c.idle == nil {
			c.idle = make(chan struct{})
		}
		idle := c.idle
		c.mu.Unlock()
		<-idle
	}
}
