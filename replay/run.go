package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// replyHorizon is how far past the last scheduled send (in trace time) the
// replay keeps reading, with --limit or --duration, to find the status and
// delivery records that answer the sends in scope.
const replyHorizon = 5 * time.Minute

// Result is what Run returns: the run folder and its summary.
type Result struct {
	Dir     string
	Summary *Summary
}

// OK reports whether every record was sent and delivered, within the
// configured tolerances.
func (r *Result) OK() bool { return r != nil && r.Summary != nil && r.Summary.OK }

// runner is the state of one Run.
type runner struct {
	cfg    Config
	clock  Clock
	m      *metrics
	tr     *tracker
	out    *outbox
	remap  *remapper
	seq    *maestro.SequenceIDs
	disp   *dispatcher
	sem    chan struct{} // Publish calls in flight: specs and other sends
	stSem  chan struct{} // Publish calls in flight: status replies
	dialOp []grpc.DialOption
	start  time.Time     // when Run began
	t0     time.Time     // the schedule's start instant
	origin time.Duration // the trace offset played at t0

	idmap     *bufio.Writer // original<TAB>remapped resource ids, with a run id

	streamCtx context.Context // subscriptions live until the end of the run
	wg        sync.WaitGroup  // stream goroutines
	sends     counter         // publish goroutines in flight

	mu       sync.Mutex
	agents   map[string]*agent
	sources  map[string]*source // by id + "\x00" + address
	conns    map[string]*grpc.ClientConn
	perAddr  map[string]int // agents per broker address
	allConns []*grpc.ClientConn

	publishLat    latencySet
	specDelivery  *Latency
	statusForward *Latency
	sendLate      *Latency
	replyLate     *Latency

	specsSent, statusesSent       atomic.Int64
	reconnects, resyncs           atomic.Int64
	heartbeats, undecodable       atomic.Int64
	outageNanos                   atomic.Int64
	lastSend                      atomic.Int64 // unix nanos of the last send
	logMu                         sync.Mutex
	consumersCreated, consPresent int64
}

// Run plays a trace and writes the run folder. It returns an error only
// when the run could not be carried out (bad config, unreadable trace,
// unreachable REST API, unwritable results); failed sends and missing
// deliveries are reported in the Result, whose OK says whether the run
// succeeded.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rd, err := format.Open(cfg.Trace)
	if err != nil {
		return nil, fmt.Errorf("replay: open trace: %w", err)
	}
	defer rd.Close()
	man := rd.Manifest()

	tlsCfg, token, err := cfg.TLS.load()
	if err != nil {
		return nil, err
	}
	dir := cfg.Out
	if dir == "" {
		dir = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}

	r := &runner{
		cfg:           cfg,
		clock:         cfg.Clock,
		m:             newMetrics(),
		remap:         newRemapper(cfg.RunID),
		seq:           maestro.NewSequenceIDs(),
		sem:           make(chan struct{}, cfg.MaxInflight),
		stSem:         make(chan struct{}, cfg.MaxInflight),
		dialOp:        connOptions(dialOptions(tlsCfg, token), cfg.ReconnectMin, cfg.ReconnectMax),
		agents:        map[string]*agent{},
		sources:       map[string]*source{},
		conns:         map[string]*grpc.ClientConn{},
		perAddr:       map[string]int{},
		specDelivery:  NewLatency(),
		statusForward: NewLatency(),
		sendLate:      NewLatency(),
		replyLate:     NewLatency(),
	}
	r.start = r.clock.Now()
	if r.remap != nil {
		f, err := os.Create(filepath.Join(dir, IDMapFile))
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		r.idmap = bufio.NewWriter(f)
		fmt.Fprintf(r.idmap, "# original resource id\tresource id under run id %s\n", cfg.RunID)
	}
	r.out = newOutbox(r.start, r.clock, r.m)
	r.tr = newTracker(r.out.emit, func(s *statusState) { r.disp.schedule(r.streamCtx, s) }, r.replyDelay)
	r.disp = newDispatcher(r.clock, r.fireStatus)

	// Outcome records are small; small segments and one worker keep the
	// writer's buffers (about (2*Workers+1)*SegmentSize) out of the way.
	ow, err := format.Create(filepath.Join(dir, OutcomesDir), format.WriterOptions{SegmentSize: 4 << 20, Workers: 1, Provenance: format.Provenance{
		Tool: "cereplay replay", Version: cfg.Version, Command: "replay", Params: r.settings(), Upstreams: []string{man.Digest},
	}})
	if err != nil {
		return nil, fmt.Errorf("replay: outcomes: %w", err)
	}
	go r.out.writeLoop(ow)

	if cfg.MetricsListen != "" {
		addr, stop, err := r.m.serve(cfg.MetricsListen)
		if err != nil {
			r.out.close()
			ow.Abort()
			return nil, err
		}
		defer stop()
		r.notef("metrics on http://%s/metrics", addr)
	}

	streamCtx, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	r.streamCtx = streamCtx
	defer cancelStreams()
	go r.disp.run(streamCtx)

	clusters := make([]string, 0, len(man.Consumers))
	for _, c := range man.Consumers {
		if cfg.Shard.Owns(c) {
			clusters = append(clusters, c)
		}
	}
	if cfg.CreateConsumers {
		r.notef("creating %d consumers at %s", len(clusters), cfg.RESTURL)
		c, err := createConsumers(ctx, cfg.RESTURL, tlsCfg, token, clusters, 16, cfg.Progress)
		r.consumersCreated, r.consPresent = c.Created, c.Present
		if err != nil {
			r.abort(cancelStreams, ow)
			return nil, err
		}
	}
	for _, c := range clusters { // spread agents over addresses in a stable order
		r.agentFor(c)
	}

	runErr := r.play(ctx, rd, man)

	// Wait for the publishes in flight, then for the deliveries.
	r.sends.wait()
	r.settle(ctx)
	r.sends.wait()
	r.tr.finish()
	end := r.clock.Now()
	cancelStreams()
	r.closeConns()
	r.wg.Wait()
	if err := r.out.close(); err != nil && runErr == nil {
		runErr = err
	}
	if err := ow.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("replay: outcomes: %w", err)
	}

	if r.idmap != nil {
		if err := r.idmap.Flush(); err != nil && runErr == nil {
			runErr = fmt.Errorf("replay: %s: %w", IDMapFile, err)
		}
	}
	sum := r.summary(man, end)
	if ctx.Err() != nil {
		sum.Problems = append(sum.Problems, "interrupted: the rest of the trace was not played")
		sum.OK = false
	}
	info := RunInfo{Tool: "cereplay", Version: cfg.Version, Trace: cfg.Trace, TraceDigest: man.Digest, RunID: cfg.RunID,
		Mode: cfg.mode(), Settings: r.settings(), Start: r.start.UTC(), T0: r.t0.UTC(), Origin: r.origin, End: end.UTC(), Rewrites: r.remap.rewrites()}
	for _, w := range []struct {
		name string
		v    any
	}{{RunFile, info}, {SummaryFile, sum}} {
		if err := writeJSON(filepath.Join(dir, w.name), w.v); err != nil && runErr == nil {
			runErr = err
		}
	}
	return &Result{Dir: dir, Summary: sum}, runErr
}

func prepareDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, RunFile)); err == nil {
		return fmt.Errorf("replay: results folder %s already holds a run (choose another --out)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("replay: results folder: %w", err)
	}
	return nil
}

func (r *runner) abort(cancel context.CancelFunc, ow *format.Writer) {
	cancel()
	r.closeConns()
	r.wg.Wait()
	r.out.close()
	ow.Abort()
}

// settings are the timing and target options, for run.json and the
// outcomes' provenance.
func (r *runner) settings() map[string]string {
	c := r.cfg
	s := map[string]string{
		"source_addrs":    strings.Join(c.SourceAddrs, ","),
		"broker_addrs":    strings.Join(c.BrokerAddrs, ","),
		"mode":            c.mode(),
		"max_inflight":    strconv.Itoa(c.MaxInflight),
		"agents_per_conn": strconv.Itoa(c.AgentsPerConn),
		"settle":          c.Settle.String(),
		"tls":             strconv.FormatBool(c.TLS.enabled()),
	}
	add := func(k, v string, set bool) {
		if set {
			s[k] = v
		}
	}
	add("limit", strconv.FormatInt(c.Limit, 10), c.Limit > 0)
	add("duration", c.Duration.String(), c.Duration > 0)
	add("start_at", c.StartAt.UTC().Format(time.RFC3339Nano), !c.StartAt.IsZero())
	add("late_drop", c.LateDrop.String(), c.LateDrop > 0)
	add("connect_rate", strconv.FormatFloat(c.ConnectRate, 'g', -1, 64), c.ConnectRate > 0)
	add("shard", c.Shard.String(), c.Shard.Count > 1)
	add("run_id", c.RunID, c.RunID != "")
	add("rest_url", c.RESTURL, c.RESTURL != "")
	return s
}

func (r *runner) notef(format string, args ...any) {
	if r.cfg.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.cfg.Log, "replay: "+format+"\n", args...)
}

func (r *runner) countError(err error) {
	if err == nil {
		return
	}
	r.m.errors.WithLabelValues(status.Code(err).String()).Inc()
}

func (r *runner) outage(d time.Duration) { r.outageNanos.Add(int64(d)) }

// replyDelay scales a recorded reply delay by the speed; at --max replies
// leave as soon as their spec arrives.
func (r *runner) replyDelay(d time.Duration) time.Duration {
	if r.cfg.Max {
		return 0
	}
	return scale(d, r.cfg.Speed)
}

// conn returns the shared connection for key, dialing it on first use
// (grpc.NewClient connects lazily). Call with r.mu held.
func (r *runner) conn(addr, key string) *grpc.ClientConn {
	if cc := r.conns[key]; cc != nil {
		return cc
	}
	cc, err := grpc.NewClient(addr, r.dialOp...)
	if err != nil {
		// NewClient fails only on a malformed target; every call on the
		// nil connection would fail, so report it loudly once.
		r.notef("dial %s: %v", addr, err)
		return nil
	}
	r.conns[key] = cc
	r.allConns = append(r.allConns, cc)
	return cc
}

func (r *runner) closeConns() {
	r.mu.Lock()
	conns := r.allConns
	r.allConns = nil
	r.conns = map[string]*grpc.ClientConn{}
	r.mu.Unlock()
	for _, cc := range conns {
		_ = cc.Close()
	}
}

// agentFor returns the agent of a cluster, creating it (and choosing its
// broker address round-robin) on first use.
func (r *runner) agentFor(cluster string) *agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.agents[cluster]; a != nil {
		return a
	}
	n := len(r.agents)
	addr := r.cfg.BrokerAddrs[n%len(r.cfg.BrokerAddrs)]
	group := r.perAddr[addr] / r.cfg.AgentsPerConn
	r.perAddr[addr]++
	req, _ := proto.Marshal(maestro.AgentSubscription(cluster)) // cannot fail for a plain message
	a := &agent{r: r, cluster: cluster, addr: addr, subReq: req, versions: map[string]int64{},
		cc: r.conn(addr, fmt.Sprintf("broker %s #%d", addr, group))}
	r.agents[cluster] = a
	return a
}

// sourceAddrFor pairs a cluster's broker address with a source address, so
// with several independent instances a spec goes to the instance that
// serves its agent.
func (r *runner) sourceAddrFor(a *agent) string {
	for i, b := range r.cfg.BrokerAddrs {
		if b == a.addr {
			return r.cfg.SourceAddrs[i%len(r.cfg.SourceAddrs)]
		}
	}
	return r.cfg.SourceAddrs[0]
}

// sourceFor returns the source with this id on one source address.
func (r *runner) sourceFor(id, addr string) *source {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := id + "\x00" + addr
	if s := r.sources[key]; s != nil {
		return s
	}
	req, _ := proto.Marshal(maestro.SourceSubscription(id))
	s := &source{r: r, id: id, addr: addr, subReq: req, cc: r.conn(addr, "source "+id+" "+addr)}
	r.sources[key] = s
	return s
}

// acquire takes an in-flight slot for a spec (or other) send.
func (r *runner) acquire(ctx context.Context) bool { return r.take(ctx, r.sem) }

func (r *runner) release() { r.give(r.sem) }

// Status replies have their own slots, so a flood of spec publishes at
// --max cannot starve the replies (and pile them up in memory).
func (r *runner) acquireStatus(ctx context.Context) bool { return r.take(ctx, r.stSem) }

func (r *runner) releaseStatus() { r.give(r.stSem) }

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
// (0 when OK) and the error message.
func (r *runner) call(ctx context.Context, cc *grpc.ClientConn, addr string, ce []byte) (time.Duration, uint32, string) {
	if cc == nil {
		return 0, uint32(codes.Unavailable), "no connection to " + addr
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	err := publish(cctx, cc, ce)
	lat := time.Since(start)
	r.lastSend.Store(time.Now().UnixNano())
	r.publishLat.get(addr).Record(lat)
	r.m.latency.WithLabelValues("publish").Observe(lat.Seconds())
	if err != nil {
		r.countError(err)
		st := status.Convert(err)
		return lat, uint32(st.Code()), st.Message()
	}
	return lat, 0, ""
}

// trace reading with one record of look-ahead (the connect phase reads
// until the first record that is not a subscribe).
type traceReader struct {
	rd     *format.Reader
	peeked *format.Record
	next   uint64 // index of the next record
}

func (t *traceReader) read() (*format.Record, uint64, error) {
	if p := t.peeked; p != nil {
		t.peeked = nil
		t.next++
		return p, t.next - 1, nil
	}
	rec, err := t.rd.Next()
	if err != nil {
		return nil, 0, err
	}
	t.next++
	return rec, t.next - 1, nil
}

func (t *traceReader) unread(rec *format.Record) {
	t.peeked = rec
	t.next--
}

// play runs the connect phase and then the schedule.
func (r *runner) play(ctx context.Context, rd *format.Reader, man *format.Manifest) error {
	tr := &traceReader{rd: rd}
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
	// The schedule starts at the first record after the connect phase:
	// the subscribes at the head of a trace were just played, and their
	// recorded span (minutes, for batched agents) is not waited for again.
	if rec, _, err := tr.read(); err == nil {
		r.origin = rec.Offset
		tr.unread(rec)
	}
	r.t0 = r.cfg.StartAt
	if r.t0.IsZero() {
		r.t0 = r.clock.Now()
	}
	r.notef("playing %s from %s", r.cfg.mode(), r.t0.UTC().Format(time.RFC3339Nano))

	var (
		paced     uint64
		lastDue   time.Duration
		cut       bool
		cutOffset time.Duration
	)
	for {
		if ctx.Err() != nil {
			return nil // interrupted: account for what was sent
		}
		rec, i, err := tr.read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: read trace record %d: %w", i, err)
		}
		if done.Add(1)%1024 == 0 {
			r.tr.prune(rec.Offset - replyHorizon)
		}
		if r.cfg.Max {
			r.backpressure(ctx)
		}
		if rec.Type != format.TypeEvent {
			continue
		}
		if cut && rec.Offset > cutOffset+replyHorizon {
			return nil
		}
		m := metaOf(i, rec)
		switch rec.Flow {
		case format.FlowSourceToServer:
			if cut {
				continue
			}
			n := paced
			paced++
			due := r.cfg.Pacer.Due(n, r.sinceOrigin(rec.Offset))
			if r.cfg.Limit > 0 && int64(n) >= r.cfg.Limit || r.cfg.Duration > 0 && due > r.cfg.Duration {
				cut, cutOffset = true, rec.Offset
				continue
			}
			lastDue = due
			r.sendSpec(ctx, m, rec, due)
		case format.FlowAgentToServer:
			if rec.HasTrigger {
				if cut && !r.tr.known(rec.Trigger) {
					continue
				}
				r.addStatus(m, rec)
				continue
			}
			if cut {
				continue
			}
			r.sendPlain(ctx, m, rec, r.untriggeredDue(rec, lastDue))
		case format.FlowServerToAgent:
			if cut && !r.tr.known(rec.Trigger) {
				continue
			}
			r.tr.expectDelivery(m, rec.Trigger, rec.HasTrigger)
		case format.FlowServerToSource:
			if cut && !r.tr.known(rec.Trigger) {
				continue
			}
			r.tr.expectForward(m, rec.Trigger, rec.HasTrigger)
		case format.FlowAgentSubscribe, format.FlowSourceSubscribe:
			if cut {
				continue
			}
			due := r.t0.Add(r.untriggeredDue(rec, lastDue))
			if err := r.clock.SleepUntil(ctx, due); err != nil {
				return nil
			}
			r.sends.add()
			go func() {
				defer r.sends.done()
				r.subscribeRecord(m, rec)
			}()
		}
	}
}

// backpressure holds the reader at --max while too many sends wait for
// their deliveries: without a schedule nothing else bounds how far the
// trace is read ahead of the target, and every waiting reply holds its
// event in memory.
func (r *runner) backpressure(ctx context.Context) {
	limit := 8 * r.cfg.MaxInflight
	for r.tr.pending() > limit && ctx.Err() == nil {
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
	if _, speed := r.cfg.Pacer.(SpeedPacer); speed {
		return scale(r.sinceOrigin(rec.Offset), r.cfg.Speed)
	}
	return lastDue
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
		rec, i, err := tr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay: read trace record %d: %w", i, err)
		}
		if rec.Type != format.TypeEvent || !rec.Flow.Subscribe() {
			tr.unread(rec)
			break
		}
		done.Add(1)
		jobs = append(jobs, job{metaOf(i, rec), rec})
	}
	if man.CountsByFlow[format.FlowAgentSubscribe.String()] == 0 {
		for _, c := range man.Consumers {
			if r.cfg.Shard.Owns(c) {
				jobs = append(jobs, job{recMeta{flow: format.FlowAgentSubscribe, actor: c}, nil})
			}
		}
	}
	if man.CountsByFlow[format.FlowSourceSubscribe.String()] == 0 {
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
	}
	close(work)
	wg.Wait()
	r.notef("connected in %v", r.clock.Now().Sub(start).Round(time.Millisecond))
	if err != nil {
		return nil // interrupted: nothing more to play, account for the rest
	}
	return nil
}

// subscribeRecord plays a subscribe record and writes its outcome.
func (r *runner) subscribeRecord(m recMeta, rec *format.Record) {
	if rec.Flow == format.FlowAgentSubscribe {
		if !r.cfg.Shard.Owns(rec.Actor) {
			r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
			return
		}
		a := r.agentFor(rec.Actor)
		if len(rec.Data) > 0 && !a.started.Load() {
			a.subReq = append([]byte(nil), rec.Data...)
		}
		if a.started.Load() {
			r.out.emit(m, format.Outcome{Status: format.OutcomeSent, Note: "already subscribed"})
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

// isSpecRequest reports whether a source event is a spec the agent must
// receive (create, update, delete); status resync requests are not.
func isSpecRequest(t string) bool {
	return t == maestro.TypeSpecCreate || t == maestro.TypeSpecUpdate || t == maestro.TypeSpecDelete
}

// sendSpec waits until a source event is due and publishes it.
func (r *runner) sendSpec(ctx context.Context, m recMeta, rec *format.Record, due time.Duration) {
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
	addr := r.cfg.SourceAddrs[0]
	if k.ClusterName != "" {
		addr = r.sourceAddrFor(r.agentFor(k.ClusterName))
	}
	src := r.sourceFor(rec.Actor, addr)
	ce, err := r.remap.event(rec.Data, rec.ResourceID, 0, false, "")
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
		return
	}
	dueAt := r.t0.Add(due)
	if r.clock.SleepUntil(ctx, dueAt) != nil || !r.acquire(ctx) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: "not sent: the run was interrupted"})
		return
	}
	tracked := isSpecRequest(rec.EventType)
	s := &specState{meta: m, cluster: k.ClusterName, wireRID: r.remap.id(rec.ResourceID)}
	if r.idmap != nil && rec.EventType == maestro.TypeSpecCreate {
		// One line per created resource; only this goroutine writes.
		fmt.Fprintf(r.idmap, "%s\t%s\n", rec.ResourceID, s.wireRID)
	}
	if tracked {
		r.tr.register(s)
	}
	// Lateness is measured where the schedule releases the send; the
	// goroutine that makes the call starts microseconds later and that
	// time counts in the Publish latency.
	now := r.clock.Now()
	late := now.Sub(dueAt)
	if !r.cfg.Max {
		r.sendLate.Record(late)
		r.m.lateness.Observe(late.Seconds())
	}
	if r.cfg.LateDrop > 0 && !r.cfg.Max && late > r.cfg.LateDrop {
		r.release()
		o := format.Outcome{Status: format.OutcomeDroppedLate, Lateness: late}
		if tracked {
			r.tr.specNotSent(s, o)
		} else {
			r.out.emit(m, o)
		}
		return
	}
	s.sentAt, s.lateness = now, late
	r.sends.add()
	go func() {
		defer r.sends.done()
		defer r.release()
		if tracked {
			r.tr.addSpec(s)
		}
		lat, code, msg := r.call(r.streamCtx, src.cc, addr, ce)
		r.specsSent.Add(1)
		if tracked {
			r.tr.specSent(s, lat, code, msg)
			return
		}
		r.out.emit(m, plainOutcome(late, lat, code, msg))
	}()
}

func plainOutcome(late, lat time.Duration, code uint32, msg string) format.Outcome {
	if code != 0 {
		return format.Outcome{Status: format.OutcomeFailed, Code: code, Lateness: late, Latency: lat, Note: msg}
	}
	return format.Outcome{Status: format.OutcomeSent, Lateness: late, Latency: lat}
}

// sendPlain publishes an agent event that answers nothing (a spec resync
// request, a status without a trigger) at its due time.
func (r *runner) sendPlain(ctx context.Context, m recMeta, rec *format.Record, due time.Duration) {
	if !r.cfg.Shard.Owns(rec.Actor) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
		return
	}
	a := r.agentFor(rec.Actor)
	seq := ""
	if strings.HasSuffix(rec.EventType, ".status.update_request") {
		seq = r.seq.Next()
	}
	ce, err := r.remap.event(rec.Data, rec.ResourceID, 0, false, seq)
	if err != nil {
		r.out.emit(m, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
		return
	}
	dueAt := r.t0.Add(due)
	if r.clock.SleepUntil(ctx, dueAt) != nil || !r.acquire(ctx) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: "not sent: the run was interrupted"})
		return
	}
	r.sends.add()
	go func() {
		defer r.sends.done()
		defer r.release()
		late := r.clock.Now().Sub(dueAt)
		lat, code, msg := r.call(r.streamCtx, a.cc, a.addr, ce)
		r.out.emit(m, plainOutcome(late, lat, code, msg))
	}()
}

// addStatus hands a status reply to the tracker, which fires it once the
// spec it answers has reached the agent.
func (r *runner) addStatus(m recMeta, rec *format.Record) {
	if !r.cfg.Shard.Owns(rec.Actor) {
		r.out.emit(m, format.Outcome{Status: format.OutcomeSkipped, Note: noteOtherShard})
		return
	}
	// A copy: a reply can wait long for its spec, and a slice of the
	// record would keep its whole trace segment in memory.
	st := &statusState{meta: m, agent: rec.Actor, delay: rec.Delay, data: append([]byte(nil), rec.Data...)}
	r.tr.addStatus(st, rec.Trigger, true)
}

// fireStatus runs on the dispatcher when a status is due: it rewrites the
// version and sequence id and publishes it on the agent's connection.
func (r *runner) fireStatus(st *statusState) {
	if !r.acquireStatus(r.streamCtx) {
		r.tr.statusNotSent(st, format.Outcome{Status: format.OutcomeSkipped, Note: "not sent: the run ended"})
		return
	}
	now := r.clock.Now()
	late := now.Sub(st.due)
	r.replyLate.Record(late)
	if r.cfg.LateDrop > 0 && !r.cfg.Max && late > r.cfg.LateDrop {
		r.releaseStatus()
		r.tr.statusNotSent(st, format.Outcome{Status: format.OutcomeDroppedLate, Lateness: late})
		return
	}
	a := r.agentFor(st.agent)
	r.sends.add()
	go func() {
		defer r.sends.done()
		defer r.releaseStatus()
		version, has := r.tr.statusVersion(st)
		seq := r.seq.Next()
		ce, err := r.remap.event(st.data, st.meta.rid, version, has, seq)
		st.data = nil
		if err != nil {
			r.tr.statusNotSent(st, format.Outcome{Status: format.OutcomeFailed, Code: uint32(codes.InvalidArgument), Note: err.Error()})
			return
		}
		st.seq, st.sentAt, st.lateness = seq, r.clock.Now(), late
		r.tr.statusSending(st)
		lat, code, msg := r.call(r.streamCtx, a.cc, a.addr, ce)
		r.statusesSent.Add(1)
		r.tr.statusSent(st, lat, code, msg)
	}()
}

// settle waits until every send has its delivery, or Settle has passed
// since the last send.
func (r *runner) settle(ctx context.Context) {
	if r.tr.pending() == 0 {
		return
	}
	r.notef("waiting up to %v for %d deliveries", r.cfg.Settle, r.tr.pending())
	deadline := time.Now().Add(r.cfg.Settle)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.tr.pending() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// summary builds summary.json from the counters, histograms and outcomes.
func (r *runner) summary(man *format.Manifest, end time.Time) *Summary {
	o := r.out
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &Summary{
		TraceDigest:        man.Digest,
		RunID:              r.cfg.RunID,
		Mode:               r.cfg.mode(),
		Records:            o.records,
		Outcomes:           map[string]int64{},
		ByFlow:             o.byFlow,
		Errors:             o.errors,
		Duplicates:         o.dups,
		DuplicateIDs:       o.dupIDs,
		SpecsSent:          r.specsSent.Load(),
		StatusesSent:       r.statusesSent.Load(),
		ConsumersCreated:   r.consumersCreated,
		ConsumersPresent:   r.consPresent,
		PublishLatency:     r.publishLat.summaries(),
		SpecDelivery:       r.specDelivery.Summary(),
		StatusForward:      r.statusForward.Summary(),
		SendLateness:       r.sendLate.Summary(),
		ReplyLateness:      r.replyLate.Summary(),
		AgentsPerAddr:      map[string]int{},
		SourcesPerAddr:     map[string]int{},
		Reconnects:         r.reconnects.Load(),
		OutageSeconds:      time.Duration(r.outageNanos.Load()).Seconds(),
		ResyncsSent:        r.resyncs.Load(),
		Heartbeats:         r.heartbeats.Load(),
		Undecodable:        r.undecodable.Load(),
		UnexpectedSpecs:    r.tr.unexpectedSpecs,
		UnexpectedStatuses: r.tr.unexpectedStatuses,
		DuplicateForwards:  r.tr.duplicateForwards,
	}
	for st, n := range o.byStatus {
		s.Outcomes[st.String()] = n
	}
	if !r.t0.IsZero() {
		s.WallSeconds = end.Sub(r.t0).Seconds()
		if ls := r.lastSend.Load(); ls > 0 {
			s.SendSeconds = time.Unix(0, ls).Sub(r.t0).Seconds()
		}
	}
	if s.SendSeconds > 0 {
		s.SpecsPerSecond = float64(s.SpecsSent) / s.SendSeconds
		s.EventsPerSecond = float64(s.SpecsSent+s.StatusesSent) / s.SendSeconds
	}
	r.mu.Lock()
	for _, a := range r.agents {
		if a.started.Load() {
			s.AgentsPerAddr[a.addr]++
		}
	}
	for _, src := range r.sources {
		if src.started.Load() {
			s.SourcesPerAddr[src.addr]++
		}
	}
	r.mu.Unlock()

	failed := o.byStatus[format.OutcomeFailed]
	missing := o.byStatus[format.OutcomeMissing] + o.byStatus[format.OutcomeSkipped] - o.shard
	dropped := o.byStatus[format.OutcomeDroppedLate]
	if failed > r.cfg.AllowFailed {
		s.Problems = append(s.Problems, fmt.Sprintf("%d sends failed (allowed %d)", failed, r.cfg.AllowFailed))
	}
	if missing > r.cfg.AllowMissing {
		s.Problems = append(s.Problems, fmt.Sprintf("%d expected deliveries missing or replies not sent (allowed %d)", missing, r.cfg.AllowMissing))
	}
	if dropped > r.cfg.AllowDropped {
		s.Problems = append(s.Problems, fmt.Sprintf("%d sends dropped as too late (allowed %d)", dropped, r.cfg.AllowDropped))
	}
	if s.Duplicates > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d resource ids already existed in the target: replay with another --run-id", s.Duplicates))
	}
	if o.records == 0 {
		s.Problems = append(s.Problems, "no record of the trace was in scope")
	}
	sort.Strings(s.Problems)
	s.OK = len(s.Problems) == 0
	return s
}

// counter counts goroutines in flight. Unlike sync.WaitGroup it may be
// incremented while someone waits for zero (statuses fire during the
// settle wait).
type counter struct{ n atomic.Int64 }

func (c *counter) add()  { c.n.Add(1) }
func (c *counter) done() { c.n.Add(-1) }

// wait polls until nothing is in flight.
func (c *counter) wait() {
	for c.n.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
}
