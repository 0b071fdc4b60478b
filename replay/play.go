package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/pace"
)

// trace reading with one record of look-ahead (the connect phase reads
// until the first record that is not a subscribe).
// With a multiplier, every record is read as its copies in turn.
type traceReader struct {
	rd     *format.Reader
	peeked *format.Record
	next   uint64 // index of the next record

	mult *multiplier
	orig *format.Record // the trace record being copied
}

func (t *traceReader) read() (*format.Record, uint64, error) {
	if p := t.peeked; p != nil {
		t.peeked = nil
		t.next++
		return p, t.next - 1, nil
	}
	if t.mult != nil && t.next%uint64(t.mult.k) != 0 {
		rec, err := t.mult.record(t.orig, int(t.next%uint64(t.mult.k)))
		if err != nil {
			return nil, t.next, err
		}
		t.next++
		return rec, t.next - 1, nil
	}
	rec, err := t.rd.Next()
	if err != nil {
		return nil, t.next, err
	}
	if t.mult != nil {
		t.orig = rec
		if rec, err = t.mult.record(rec, 0); err != nil {
			return nil, t.next, err
		}
	}
	t.next++
	return rec, t.next - 1, nil
}

func (t *traceReader) unread(rec *format.Record) {
	t.peeked = rec
	t.next--
}

// keep copies a record that must outlive the next read: the trace is read
// with format.Reader.ReuseBuffers, so a record is valid only until then.
func keep(rec *format.Record) *format.Record {
	c := *rec
	c.Data = bytes.Clone(rec.Data)
	return &c
}

// play runs the connect phase and then the schedule.
func (r *runner) play(ctx context.Context, rd *format.Reader, man *format.Manifest) error {
	tr := &traceReader{rd: rd, mult: r.mult}
	total := man.Records
	var done atomic.Int64
	if r.cfg.Progress != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					r.cfg.Progress(done.Load(), total)
					return
				case <-t.C:
					r.cfg.Progress(done.Load(), total)
				}
			}
		}()
	}

	if err := r.connectPhase(ctx, tr, man, &done); err != nil {
		return err
	}
	if why := r.awaitStreams(ctx); why != "" {
		r.stop("could not subscribe", why)
	}
	if r.stopped() != "" {
		r.notPlayed(tr, &done)
		return nil
	}
	go r.watch(r.watchCtx)
	// The schedule starts at the first record after the connect phase:
	// the subscribes at the head of a trace were just played, and their
	// recorded span (minutes, for batched agents) is not waited for again.
	if rec, _, err := tr.read(); err == nil {
		r.origin = rec.Offset
		tr.unread(rec)
	}
	// Connecting thousands of streams leaves a large heap, often in the
	// middle of a collection: finishing it now keeps that work (both
	// cores, for a few hundred milliseconds) out of the first seconds of
	// the schedule, where it made the first sends of a paced run late.
	runtime.GC()
	r.t0 = r.cfg.StartAt
	if r.t0.IsZero() {
		r.t0 = r.clock.Now()
	}
	r.notef("playing %s from %s", r.cfg.mode(), r.t0.UTC().Format(time.RFC3339Nano))
	if _, real := r.clock.(pace.PreciseClock); real && r.cfg.Log != nil {
		cctx, cancel := context.WithCancel(ctx)
		counted := make(chan struct{})
		go func() {
			defer close(counted)
			r.countdown(cctx, r.t0)
		}()
		defer func() { cancel(); <-counted }()
	}
	if r.realtime != nil {
		r.notef("long waits between sends run at normal priority (%v): at low rates sends are late "+
			"whenever other processes have the CPUs; grant CAP_SYS_NICE (sudo setcap cap_sys_nice+ep cereplay)", r.realtime)
	}
	r.releases = newReleaseQueue()
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		r.pacer(ctx, r.releases)
	}()
	readAll := false
	defer func() {
		close(r.releases.ch)
		<-paced
		if readAll && r.pacerSkips.Load() == 0 {
			r.playedAll.Store(true)
		}
	}()

	var (
		specs     uint64
		lastDue   time.Duration
		cut       bool
		cutOffset time.Duration
	)
	for {
		if ctx.Err() != nil {
			if r.stopped() != "" {
				r.notPlayed(tr, &done)
			}
			return nil // interrupted: account for what was sent
		}
		rec, i := r.next(tr)
		if rec == nil {
			readAll = r.damage == nil
			return nil
		}
		if done.Add(1)%1024 == 0 {
			r.tr.prune(rec.Offset - replyHorizon)
		}
		if r.cfg.Max || !r.playsSource() {
			// Without a schedule of its own (--only agents reads ahead
			// of a real source) only the backpressure bounds the read.
			r.backpressure(ctx)
		}
		if rec.Type != format.TypeEvent {
			continue
		}
		if cut && rec.Offset > cutOffset+r.tr.answerSpan() {
			readAll = true
			return nil
		}
		m := metaOf(i, rec)
		switch rec.Flow {
		case format.FlowSourceToServer:
			if cut {
				continue
			}
			n := specs
			specs++
			due := r.cfg.Pacer.Due(n, r.sinceOrigin(rec.Offset))
			if r.cfg.Limit > 0 && int64(n) >= r.cfg.Limit || r.cfg.Duration > 0 && due > r.cfg.Duration {
				cut, cutOffset = true, rec.Offset
				continue
			}
			lastDue = due
			if !r.playsSource() {
				r.expectSpec(m, rec)
				continue
			}
			r.sendSpec(ctx, m, rec, due)
		case format.FlowAgentToServer:
			if rec.HasTrigger {
				if cut && !r.tr.known(rec.Trigger) {
					continue
				}
				if !r.playsAgents() {
					r.expectReply(m, rec)
					continue
				}
				r.addStatus(m, rec)
				continue
			}
			if cut {
				continue
			}
			if !r.playsAgents() {
				r.otherSide(m)
				continue
			}
			r.sendPlain(ctx, m, rec, r.untriggeredDue(rec, lastDue))
		case format.FlowServerToAgent:
			if cut && !r.tr.known(rec.Trigger) || r.answersOtherShard(m, rec) {
				continue
			}
			if !r.playsAgents() {
				r.otherSide(m)
				continue
			}
			r.tr.expectDelivery(m, rec.Trigger, rec.HasTrigger)
		case format.FlowServerToSource:
			if cut && !r.tr.known(rec.Trigger) || r.answersOtherShard(m, rec) {
				continue
			}
			if !r.playsSource() {
				r.otherSide(m)
				continue
			}
			r.tr.expectForward(m, rec.Trigger, rec.HasTrigger)
		case format.FlowAgentSubscribe, format.FlowSourceSubscribe:
			if cut {
				continue
			}
			rec := keep(rec)
			r.pace(ctx, r.t0.Add(r.untriggeredDue(rec, lastDue)), func() {
				r.out.emit(m, format.Outcome{Status: format.OutcomeNotSent, Note: r.notSentNote()})
			}, func() {
				r.sends.add()
				go func() {
					defer r.sends.done()
					r.subscribeRecord(m, rec)
				}()
			})
		}
	}
}

// next reads the trace's next record and its index. At the end of the
// trace, or where it is damaged (recorded by damaged), it returns nil.
func (r *runner) next(tr *traceReader) (*format.Record, uint64) {
	rec, i, err := tr.read()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			r.damaged(i, err)
		}
		return nil, i
	}
	return rec, i
}

// damaged records that the trace could not be read past record i: the
// run goes on to account for what was sent, and fails.
func (r *runner) damaged(i uint64, err error) {
	d := &TraceDamage{Record: i, SegmentRecord: -1, Error: err.Error()}
	var ce *format.CorruptionError
	if errors.As(err, &ce) {
		d.File, d.Offset, d.InStream, d.SegmentRecord = ce.File, ce.Offset, ce.InStream, ce.Record
	}
	r.damage = d
	r.notef("trace damaged at record %d: %v", i, err)
}

// countdown announces the wait for a start instant in the future and
// counts it down in the run's notes, more often as it nears, so a run
// waiting for --start-at is not silent. It returns at t0 or when ctx ends.
func (r *runner) countdown(ctx context.Context, t0 time.Time) {
	left := time.Until(t0)
	if left < time.Second {
		return
	}
	r.notef("waiting for the start instant %s (--start-at): starting in %v", t0.UTC().Format(time.RFC3339), left.Round(time.Second))
	for {
		mark := nextMark(time.Until(t0))
		if mark <= 0 {
			return
		}
		t := time.NewTimer(time.Until(t0.Add(-mark)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.notef("starting in %v", mark)
	}
}

// nextMark is the next whole step below left at which countdown speaks:
// every 10 minutes, then every minute, every 10 seconds and, in the last
// 10 seconds, every second.
func nextMark(left time.Duration) time.Duration {
	step := time.Second
	switch {
	case left > 10*time.Minute:
		step = 10 * time.Minute
	case left > time.Minute:
		step = time.Minute
	case left > 10*time.Second:
		step = 10 * time.Second
	}
	return (left - 1) / step * step
}

// notPlayed gives every record left in the trace the outcome of a send
// the run stopped before (see stop).
func (r *runner) notPlayed(tr *traceReader, done *atomic.Int64) {
	note := r.notSentNote()
	for {
		rec, i := r.next(tr)
		if rec == nil {
			return
		}
		done.Add(1)
		if rec.Type == format.TypeEvent {
			r.out.emit(metaOf(i, rec), format.Outcome{Status: format.OutcomeNotSent, Note: note})
		}
	}
}

// release is one send waiting for its due time on the pacer.
type release struct {
	due  time.Time
	send func() // at the due time, on the pacer goroutine
	skip func() // instead of send, when the run was interrupted first
}

// pacerQueue bounds how many prepared sends wait for the pacer: enough to
// keep it fed between reads of the trace, a few hundred kilobytes of events.
const pacerQueue = 256

// refillBatch is how many sends the pacer takes from a full queue before
// it wakes the reader to refill it. The reader then prepares them in one
// run on a processor, during which, on a process with one CPU, the
// connections' readers wait for it and a yielding pacer waits for its
// thread: a dozen or two keeps that run to a few hundred microseconds.
const refillBatch = 16

// releaseQueue carries prepared sends to the pacer. The reader that fills
// it is woken by the pacer only once refillBatch slots are free, not after
// every send: on a paced run the queue is full, and a reader woken for
// each slot made every send cost the pacer's thread a hand-over of a
// processor to another thread to run the reader.
type releaseQueue struct {
	ch   chan release
	room chan struct{} // a token once the pacer has freed refillBatch slots
}

func newReleaseQueue() *releaseQueue {
	return &releaseQueue{ch: make(chan release, pacerQueue), room: make(chan struct{}, 1)}
}

// taken tells the queue the pacer has just taken a release.
func (q *releaseQueue) taken() {
	// While the reader waits, only the pacer changes the length, one at a
	// time, so it passes the mark exactly. A token left from a time the
	// reader was not waiting only makes it look again.
	if len(q.ch) == pacerQueue-refillBatch {
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
}

// pace hands a prepared send to the pacer. While the pacer's queue is full
// it waits for refillBatch free slots, which keeps the trace reader a
// bounded distance ahead.
func (r *runner) pace(ctx context.Context, due time.Time, skip, send func()) {
	rel := release{due: due, send: send, skip: skip}
	for {
		select {
		case r.releases.ch <- rel:
			return
		default:
		}
		select {
		case <-r.releases.room:
		case <-ctx.Done():
			skip()
			return
		}
	}
}

// pacer releases sends at their due times, in order. It runs on its own
// goroutine and does nothing else: reading the trace, matching records
// and copying events happen on the reading goroutine, so the pacer is
// ready when a send is due instead of busy (or waiting for a lock that
// the agents' streams hold) with the records around it. While it waits
// on its Thread it also fires the status replies due before its next
// send (dispatcher.hostUntil). It returns when q is closed; after an
// interrupt it skips what is left.
func (r *runner) pacer(ctx context.Context, q *releaseQueue) {
	var thread pace.Thread
	dedicate := pace.Dedicated(r.clock, r.cfg.Pacer)
	precise, _ := r.clock.(pace.PreciseClock)
	defer thread.Release()
	defer r.disp.unhost()
	for {
		rel, ok := r.nextRelease(q)
		if !ok {
			return
		}
		q.taken()
		if dedicate {
			thread.Fit(time.Until(rel.due))
		}
		var err error
		if thread.Held() && ctx.Err() == nil {
			err = r.disp.hostUntil(ctx, precise, rel.due)
		} else {
			r.disp.unhost()
			err = r.clock.SleepUntil(ctx, rel.due)
		}
		if ctx.Err() != nil || err != nil {
			r.disp.unhost()
			r.pacerSkips.Add(1)
			rel.skip()
			continue
		}
		if len(r.sem) == cap(r.sem) {
			// The send will wait for an in-flight slot: the replies
			// must not wait with it.
			r.disp.unhost()
		}
		rel.send()
	}
}

// nextRelease takes the next release from q, handing the replies back to
// the dispatcher's goroutine first if it must wait for one: the reader
// may be far from the next send (at the end of the trace, or reading
// records that are not sends), and replies fall due meanwhile.
func (r *runner) nextRelease(q *releaseQueue) (release, bool) {
	select {
	case rel, ok := <-q.ch:
		return rel, ok
	default:
	}
	r.disp.unhost()
	rel, ok := <-q.ch
	return rel, ok
}

// backpressure holds the reader at --max while too many specs wait for
// their delivery or replies for their send: without a schedule nothing
// else bounds how far the trace is read ahead of the target, and every
// waiting reply holds its event in memory. Statuses waiting for their
// forward count too: letting a target's forward queue grow without bound
// makes the whole run slower and the target bigger.
func (r *runner) backpressure(ctx context.Context) {
	hold, pend := 4*r.cfg.MaxInflight, 8*r.cfg.MaxInflight
	for (r.tr.holding() > hold || r.tr.backlog() > pend) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// sinceOrigin is a record's offset from the start of the schedule.
func (r *runner) sinceOrigin(off time.Duration) time.Duration {
	if off < r.origin {
		return 0
	}
	return off - r.origin
}

// untriggeredDue is the due time of a record the pacer does not count
// (subscribes, agent events that answer nothing): its scaled offset when
// playing by speed, else the due time of the last spec event.
func (r *runner) untriggeredDue(rec *format.Record, lastDue time.Duration) time.Duration {
	return r.cfg.Pacer.UncountedDue(r.sinceOrigin(rec.Offset), lastDue)
}

// connectPhase subscribes the agents and sources of the subscribe records
// at the head of the trace (and, for a trace without any, every consumer
// and source of the manifest) before T0, so no spec is sent to an agent
// that is not listening yet (PROTOCOL.md §11.4).
func (r *runner) connectPhase(ctx context.Context, tr *traceReader, man *format.Manifest, done *atomic.Int64) error {
	type job struct {
		m   recMeta
		rec *format.Record // nil for a connect the trace does not record
	}
	var jobs []job
	for {
		rec, i := r.next(tr)
		if rec == nil {
			break
		}
		if rec.Type != format.TypeEvent || !rec.Flow.Subscribe() {
			tr.unread(rec)
			break
		}
		done.Add(1)
		jobs = append(jobs, job{metaOf(i, rec), keep(rec)})
	}
	if man.CountsByFlow[format.FlowAgentSubscribe.String()] == 0 && r.playsAgents() {
		for _, c := range man.Consumers {
			if r.cfg.Shard.Owns(c) {
				jobs = append(jobs, job{recMeta{flow: format.FlowAgentSubscribe, actor: c}, nil})
			}
		}
	}
	if man.CountsByFlow[format.FlowSourceSubscribe.String()] == 0 && r.playsSource() {
		for _, s := range man.Sources {
			jobs = append(jobs, job{recMeta{flow: format.FlowSourceSubscribe, actor: s}, nil})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	r.notef("connecting %d streams", len(jobs))
	start := r.clock.Now()
	work := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.ConnectWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if j.rec != nil {
					r.subscribeRecord(j.m, j.rec)
				} else if j.m.flow == format.FlowAgentSubscribe {
					_ = r.agentFor(j.m.actor).connect(r.streamCtx)
				} else {
					for _, addr := range r.cfg.SourceAddrs {
						_ = r.sourceFor(j.m.actor, addr).connect(r.streamCtx)
					}
				}
			}
		}()
	}
	var err error
	sent := 0
	for n, j := range jobs {
		if r.cfg.ConnectRate > 0 {
			due := start.Add(time.Duration(float64(n) * float64(time.Second) / r.cfg.ConnectRate))
			if err = r.clock.SleepUntil(ctx, due); err != nil {
				break
			}
		}
		select {
		case work <- j:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		sent++
	}
	close(work)
	wg.Wait()
	for _, j := range jobs[sent:] {
		if j.rec != nil {
			r.out.emit(j.m, format.Outcome{Status: format.OutcomeNotSent, Note: r.notSentNote()})
		}
	}
	// An interrupted connect phase is not an error of the run: the
	// schedule loop sees the cancelled context and stops at once.
	took := r.clock.Now().Sub(start).Round(time.Millisecond)
	if up, all := r.streamsUp(); up < all {
		// Not "connected": the streams that failed may never come up.
		r.notef("%d of %d streams subscribed in %v; waiting up to %v (--connect-timeout) for the rest", up, all, took, r.cfg.ConnectTimeout)
	} else {
		r.notef("connected in %v", took)
	}
	return nil
}

// subscribeRecord plays a subscribe record and writes its outcome.
func (r *runner) subscribeRecord(m recMeta, rec *format.Record) {
	if rec.Flow == format.FlowAgentSubscribe && !r.playsAgents() || rec.Flow == format.FlowSourceSubscribe && !r.playsSource() {
		r.otherSide(m)
		return
	}
	if rec.Flow == format.FlowAgentSubscribe {
		if r.otherShard(m, rec.Actor) {
			return
		}
		a := r.agentFor(rec.Actor)
		if len(rec.Data) > 0 && !a.started.Load() {
			a.subReq = append([]byte(nil), rec.Data...)
		}
		if a.started.Load() {
			// A subscribe of an agent already subscribed is a reconnect
			// in the trace: the stream is closed and opened again.
			start := time.Now()
			if err := a.reconnect(r.streamCtx); err != nil {
				r.out.emit(m, format.Outcome{Status: format.OutcomeNotSent, Note: "not sent: the run ended while the stream reconnected"})
				return
			}
			r.out.emit(m, format.Outcome{Status: format.OutcomeSent, Latency: time.Since(start), Note: "reconnected"})
			return
		}
		start := time.Now()
		err := a.connect(r.streamCtx)
		r.out.emit(m, subscribeOutcome(err, time.Since(start)))
		return
	}
	// A source listens on every source address: with several independent
	// instances, statuses come back where their spec went.
	var firstErr error
	start := time.Now()
	for _, addr := range r.cfg.SourceAddrs {
		s := r.sourceFor(rec.Actor, addr)
		if len(rec.Data) > 0 && !s.started.Load() {
			s.subReq = append([]byte(nil), rec.Data...)
		}
		if err := s.connect(r.streamCtx); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", addr, err)
		}
	}
	r.out.emit(m, subscribeOutcome(firstErr, time.Since(start)))
}

func subscribeOutcome(err error, lat time.Duration) format.Outcome {
	if err != nil {
		st := status.Convert(errors.Unwrap(err))
		if st == nil || st.Code() == codes.OK {
			st = status.Convert(err)
		}
		return format.Outcome{Status: format.OutcomeFailed, Code: uint32(st.Code()), Latency: lat, Note: err.Error()}
	}
	return format.Outcome{Status: format.OutcomeSent, Latency: lat}
}
