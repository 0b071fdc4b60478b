package replay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	runtimemetrics "runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/pace"
)

// replyHorizon bounds how far (in trace time) a record may come after the
// send it answers: the tracker forgets finished records older than that,
// and after a --limit or --duration cut the replay reads at most that far
// past the last send in scope (less when the answers seen so far all came
// sooner: see tracker.answerSpan).
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
	cfg      Config
	realtime error // why the pacer's long waits run at normal priority (pace.CheckRealtime); nil if real-time or unpaced
	clock    pace.Clock
	*accounting
	tr        *tracker
	elsewhere indexSet // records another shard plays
	out       *outbox
	remap     *remapper
	mult      *multiplier // --clusters-multiplier; nil without
	seq       *maestro.SequenceIDs
	disp      *dispatcher
	sendPath
	start  time.Time     // when Run began
	t0     time.Time     // the schedule's start instant
	origin time.Duration // the trace offset played at t0

	idmap *bufio.Writer // original<TAB>remapped resource ids, with a run id

	streamCtx context.Context // subscriptions live until the end of the run
	wg        sync.WaitGroup  // stream goroutines
	releases  *releaseQueue   // prepared sends, to the pacer (play)

	connections
	mu sync.Mutex // guards health and the stop fields

	damage *TraceDamage // where reading the trace failed; set by the reading goroutine

	health []*streamHealth // every kept stream (under mu)
	// streamsDownNow counts the kept streams that are down (streamHealth).
	streamsDownNow atomic.Int64
	tlsCfg         *tls.Config        // the connections' TLS (nil without), to probe a refusal with
	stopOnce       sync.Once          // stop
	stopWhy        string             // why the run was stopped early (under mu)
	stopShort      string             // the same in a few words, for outcome notes (under mu)
	stopPlay       context.CancelFunc // ends the playing of the trace (stop)
	watchCtx       context.Context    // the give-up watch runs until it ends
	// playedAll says every send of the trace in scope (to its end, or to
	// a --limit or --duration cut) was released: an interrupt or stop
	// after it left nothing of the trace unplayed.
	playedAll                     atomic.Bool
	pacerSkips                    atomic.Int64 // sends the pacer skipped (interrupted or stopped)
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
	opts, err := verifyFirst(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Shard, err = planShard(ctx, cfg, opts); err != nil {
		return nil, err
	}
	rd, err := format.OpenSource(ctx, cfg.Trace, opts)
	if err != nil {
		return nil, fmt.Errorf("replay: open trace: %w", err)
	}
	defer rd.Close()
	// Every record the replay keeps past the next read is copied (the
	// events it sends go through r.bufs), so the reader can decompress
	// into recycled buffers: 2 GB less garbage for the default trace.
	rd.ReuseBuffers()
	mult := newMultiplier(cfg.ClustersMultiplier)
	man := rd.Manifest()
	if err := mult.check(man.Consumers); err != nil {
		return nil, err
	}
	man = mult.manifest(man)

	tlsCfg, token, err := cfg.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	dial, err := newDialer(cfg.Transport, tlsCfg, token, cfg)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	dir := cfg.Out
	if dir == "" {
		dir = filepath.Join("runs", time.Now().UTC().Format("20060102T150405Z"))
	}
	created, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	// A run that fails before it starts (consumers, metrics listener,
	// outcomes) leaves no results folder behind; this runs after every
	// other deferred cleanup.
	started := false
	defer func() {
		if !started && created {
			_ = os.RemoveAll(dir)
		}
	}()
	// Every part started below pushes how to stop it; the normal end runs
	// the stack, an early return runs it here (abandoning the outcomes).
	var parts closers
	defer func() { _ = parts.close() }()
	stopScrape, err := startScrape(dir, cfg)
	if err != nil {
		return nil, err
	}
	parts.push(stopScrape)

	r := &runner{
		cfg:         cfg,
		clock:       cfg.Clock,
		accounting:  newAccounting(),
		remap:       newRemapper(cfg.RunID),
		mult:        mult,
		seq:         maestro.NewSequenceIDs(),
		sendPath:    newSendPath(cfg.MaxInflight, asyncTransport(cfg.Transport)),
		connections: newConnections(dial),
		tlsCfg:      tlsCfg,
	}
	r.start = r.clock.Now()
	stopTimeline, err := r.startTimeline(dir)
	if err != nil {
		return nil, err
	}
	// Nothing is received once the parts pushed after it are stopped: the
	// timeline then holds every latency. Its intervals are cut on the wall
	// clock (startTimeline).
	parts.push(func() error { return stopTimeline(time.Now()) })
	if pace.Dedicated(r.clock, cfg.Pacer) {
		r.realtime = pace.CheckRealtime()
	}
	if r.remap != nil {
		f, err := os.Create(filepath.Join(dir, IDMapFile))
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		r.idmap = bufio.NewWriter(f)
		fmt.Fprintf(r.idmap, "# original resource id\tresource id under run id %s\n", cfg.RunID)
		parts.push(func() error {
			err := r.idmap.Flush()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("replay: results not written: %s: %w", f.Name(), err)
			}
			return nil
		})
	}
	r.out = newOutbox(r.start, r.clock, r.m)
	r.tr = newTracker(r.out.emit, func(s *statusState) { r.disp.schedule(s) }, r.replyDelay)
	r.tr.side = cfg.Only
	if r.disp, err = newDispatcher(r.clock, r.fireStatus, func() bool { return len(r.stSem) < cap(r.stSem) }); err != nil {
		return nil, err
	}

	// Outcome records are small; 1 MiB segments and one worker keep the
	// writer (about (2*Workers+1)*SegmentSize of buffers, and an encoder
	// history of twice the segment size) to a few MiB. At --max the live
	// heap sits close to the memory limit, and every MiB held for the
	// whole run is a MiB less between garbage collections.
	ow, err := format.Create(filepath.Join(dir, OutcomesDir), format.WriterOptions{SegmentSize: 1 << 20, Workers: 1, Provenance: format.Provenance{
		Tool: "cereplay replay", Version: cfg.Version, Command: "replay", Params: r.settings(), Upstreams: []string{man.Digest},
	}})
	if err != nil {
		return nil, fmt.Errorf("replay: outcomes: %w", err)
	}
	go r.out.writeLoop(ow)
	parts.push(func() error {
		err := r.out.close()
		if !started {
			ow.Abort()
			return err
		}
		if cerr := ow.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("replay: results not written: %s: %w", filepath.Join(dir, OutcomesDir), cerr)
		}
		return err
	})

	if cfg.MetricsListen != "" {
		addr, stop, err := r.m.serve(cfg.MetricsListen)
		if err != nil {
			return nil, err
		}
		defer stop()
		r.notef("metrics on http://%s/metrics", addr)
	}

	streamCtx, cancelStreams := context.WithCancel(context.WithoutCancel(ctx))
	r.streamCtx = streamCtx
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		r.disp.run(streamCtx)
	}()
	parts.push(func() error {
		cancelStreams()
		r.closeConns()
		r.wg.Wait()
		<-dispatched
		return nil
	})

	clusters := make([]string, 0, len(man.Consumers))
	for _, c := range man.Consumers {
		if cfg.Shard.Owns(c) {
			clusters = append(clusters, c)
		}
	}
	if cfg.CreateConsumers {
		r.notef("creating %d consumers at %s", len(clusters), cfg.RESTURL)
		c, err := createConsumers(ctx, cfg.RESTURL, tlsCfg, token, clusters, 16, cfg.ConsumerProgress)
		r.consumersCreated, r.consPresent = c.Created, c.Present
		if err != nil {
			return nil, err
		}
	}
	started = true
	for _, c := range clusters { // spread agents over addresses in a stable order
		r.agentFor(c)
	}

	// A stop (giving up on the target) ends the playing as an interrupt
	// would, and the run fails with its reason.
	playCtx, stopPlay := context.WithCancel(ctx)
	defer stopPlay()
	r.stopPlay = stopPlay
	watchCtx, stopWatch := context.WithCancel(playCtx)
	r.watchCtx = watchCtx
	runErr := r.play(playCtx, rd, man)

	// Wait for the publishes in flight, then for the deliveries.
	r.sends.wait()
	r.settle(playCtx)
	stopWatch()
	r.sends.wait()
	r.tr.finish()
	end := r.clock.Now()
	// Results that could not be written fail the run: the first such
	// error is returned (naming the file) and leads the problems. The
	// target's samples end with the run's work, before the teardown.
	resErr := stopScrape()
	if err := parts.close(); err != nil && resErr == nil {
		resErr = err
	}
	sum := r.summary(man, end)
	if ctx.Err() != nil {
		why := "interrupted: the rest of the trace was not played"
		if r.playedAll.Load() {
			why = "interrupted while waiting for deliveries: every send was played"
		}
		sum.Problems = append(sum.Problems, why)
		sum.OK = false
	}
	info := RunInfo{Tool: "cereplay", Version: cfg.Version, Trace: cfg.Trace, TraceDigest: man.Digest, RunID: cfg.RunID,
		Mode: cfg.mode(), Settings: r.settings(), Start: r.start.UTC(), T0: r.t0.UTC(), Origin: r.origin, End: end.UTC(), Rewrites: append(r.remap.rewrites(), mult.rewrites()...)}
	if err := r.writeHistograms(dir); err != nil && resErr == nil {
		resErr = err
	}
	if err := WriteJSON(filepath.Join(dir, RunFile), info); err != nil && resErr == nil {
		resErr = err
	}
	if resErr != nil {
		sum.failFirst(resErr)
	}
	if err := WriteJSON(filepath.Join(dir, SummaryFile), sum); err != nil && resErr == nil {
		resErr = err
		sum.failFirst(err)
	}
	if runErr == nil {
		runErr = resErr
	}
	return &Result{Dir: dir, Summary: sum}, runErr
}

// planShard gives a sharded run the plan every shard of the same trace
// makes alike (PlanShards over one pass of the trace), unless the config
// brings its own.
func planShard(ctx context.Context, cfg Config, opts format.OpenOptions) (Shard, error) {
	if cfg.Shard.Count <= 1 || cfg.Shard.Planned() {
		return cfg.Shard, nil
	}
	rd, err := format.OpenSource(ctx, cfg.Trace, opts)
	if err != nil {
		return cfg.Shard, fmt.Errorf("replay: open trace: %w", err)
	}
	defer rd.Close()
	loads, err := TraceLoads(ctx, rd)
	if err != nil {
		return cfg.Shard, err
	}
	return cfg.Shard.WithPlan(PlanShards(loads, cfg.Shard.Count))
}

// verifyFirst checks the whole trace before anything is sent, when
// cfg.VerifyFirst asks for it: a damaged trace is refused whole rather than
// played up to its damage. It returns the options to open the trace with:
// pinned to the digest of the manifest it read, so that a URL read again
// gives the same trace.
func verifyFirst(ctx context.Context, cfg Config) (format.OpenOptions, error) {
	opts := format.OpenOptions{Digest: cfg.TraceDigest}
	man, err := format.ReadSourceManifest(ctx, cfg.Trace, opts)
	if err != nil {
		return opts, fmt.Errorf("replay: open trace: %w", err)
	}
	opts.Digest = man.Digest
	if !cfg.VerifyFirst.verify(man.RawBytes) {
		return opts, nil
	}
	if _, errs := format.VerifySource(ctx, cfg.Trace, opts); len(errs) > 0 {
		return opts, fmt.Errorf("replay: trace fails verification, nothing was sent (--verify-first): %w", errs[0])
	}
	return opts, nil
}

// prepareDir makes the results folder and says whether it made it (it
// did not exist), so a run that fails before it starts can leave nothing.
func prepareDir(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, RunFile)); err == nil {
		return false, fmt.Errorf("replay: results folder %s already holds a run (choose another --out)", dir)
	}
	_, err := os.Stat(dir)
	created := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("replay: results folder: %w", err)
	}
	return created, nil
}

// closers is a run's teardown: each part Run starts pushes how to stop
// it, and close stops them in reverse order, so a part stops before what
// it feeds (streams before the outcomes they write, those before the
// timeline).
type closers []func() error

func (c *closers) push(f func() error) { *c = append(*c, f) }

// close runs the closers not run yet, the last pushed first, and returns
// the first error.
func (c *closers) close() error {
	var first error
	for len(*c) > 0 {
		f := (*c)[len(*c)-1]
		*c = (*c)[:len(*c)-1]
		if err := f(); err != nil && first == nil {
			first = err
		}
	}
	return first
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
		"transport":       c.Transport,
		"settle":          c.Settle.String(),
		"tls":             strconv.FormatBool(c.TLS.Enabled()),
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
	add("late_warn", c.LateWarn.String(), !c.Max)
	add("connect_rate", strconv.FormatFloat(c.ConnectRate, 'g', -1, 64), c.ConnectRate > 0)
	add("shard", c.Shard.String(), c.Shard.Count > 1)
	add("only", string(c.Only), c.Only != SideBoth)
	if c.Shard.Planned() {
		own := c.Shard.plan.Shards[c.Shard.Index]
		s["shard_plan"] = fmt.Sprintf("by events: %d clusters, %d events, %d bytes", own.Clusters, own.Events, own.Bytes)
	}
	add("run_id", c.RunID, c.RunID != "")
	add("clusters_multiplier", strconv.Itoa(c.ClustersMultiplier), c.ClustersMultiplier > 1)
	if pc, ok := c.Clock.(pace.PreciseClock); ok {
		add("spin_window", pc.SpinWindow.String(), pc.SpinWindow != 0)
		add("pacer_priority", pace.Priority(r.realtime), pace.Dedicated(c.Clock, c.Pacer))
	}
	add("gomaxprocs", strconv.Itoa(runtime.GOMAXPROCS(0)), true)
	gogc, limit := collectorSettings()
	add("gogc", gogc, true)
	add("memory_limit", limit, true)
	add("rest_url", c.RESTURL, c.RESTURL != "")
	add("interval", c.Interval.String(), true)
	add("target_metrics", strings.Join(c.TargetMetrics, ","), len(c.TargetMetrics) > 0)
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

// replyDelay is when a reply with the recorded delay d leaves after its
// trigger arrives (the pacer decides).
func (r *runner) replyDelay(d time.Duration) time.Duration { return r.cfg.Pacer.ReplyDelay(d) }

// settle waits until every send has its delivery, or Settle has passed
// since the last send.
func (r *runner) settle(ctx context.Context) {
	if r.tr.pending() == 0 {
		return
	}
	r.notef("waiting up to %v for %d deliveries", r.cfg.Settle, r.tr.pending())
	// Real time, not the run's clock: the wait is for the target's
	// answers, which come in real time (a fake clock would end it at once).
	deadline := time.Now().Add(r.cfg.Settle)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last := r.tr.pending()
	for last > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// With --only agents the sends are the real source's, which may
		// go on long after the trace is read: the wait is from the last
		// delivery, not from the end of the reading.
		n := r.tr.pending()
		if n != last && !r.playsSource() {
			deadline = time.Now().Add(r.cfg.Settle)
		}
		last = n
	}
}

// summary builds summary.json from the counters, histograms and outcomes.
func (r *runner) summary(man *format.Manifest, end time.Time) *Summary {
	o := r.out.counts()
	unexpectedSpecs, unexpectedStatuses, duplicateForwards := r.tr.surprises()
	s := &Summary{
		TraceDigest:        man.Digest,
		RunID:              r.cfg.RunID,
		Mode:               r.cfg.mode(),
		Only:               string(r.cfg.Only),
		NotChecked:         r.cfg.Only.notChecked(),
		Records:            o.records,
		TraceRecords:       man.Records,
		TraceDamage:        r.damage,
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
		Reconnects:         r.reconnects.Load(),
		OutageSeconds:      time.Duration(r.outageNanos.Load()).Seconds(),
		ResyncsSent:        r.resyncs.Load(),
		Heartbeats:         r.heartbeats.Load(),
		Undecodable:        r.undecodable.Load(),
		UnexpectedSpecs:    unexpectedSpecs,
		UnexpectedStatuses: unexpectedStatuses,
		DuplicateForwards:  duplicateForwards,
	}
	for st, n := range o.byStatus {
		s.Outcomes[st.String()] = n
	}
	if !r.cfg.Max {
		s.Schedule = ScheduleVerdict(r.sendLate.Count(), r.lateSends.Load(), r.cfg.LateWarn)
	}
	// A run interrupted before a future T0 took no time of its schedule.
	if !r.t0.IsZero() {
		s.WallSeconds = max(0, end.Sub(r.t0).Seconds())
		if ls := r.lastSend.Load(); ls > 0 {
			s.SendSeconds = max(0, time.Unix(0, ls).Sub(r.t0).Seconds())
		}
	}
	if s.WallSeconds > 0 {
		s.SpecsPerSecond = float64(s.SpecsSent) / s.WallSeconds
		s.EventsPerSecond = float64(s.SpecsSent+s.StatusesSent) / s.WallSeconds
	}
	s.AgentsPerAddr, s.SourcesPerAddr = r.streamsPerAddr()

	failed := o.byStatus[format.OutcomeFailed]
	missing := o.byStatus[format.OutcomeMissing] + o.byStatus[format.OutcomeNotTriggered] + o.byStatus[format.OutcomeNotSent] + o.byStatus[format.OutcomeSkipped] - o.shard - o.side
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
	if n := o.noConsumer; n > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d sends refused because their consumer does not exist in the target: "+
			"create the trace's consumers first (--create-consumers)", n))
	}
	if s.Duplicates > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d resource ids already existed in the target: replay with another --run-id", s.Duplicates))
	}
	// What stopped the run comes first: the counts above follow from it.
	var causes []string
	if why := r.stopped(); why != "" {
		if !r.playedAll.Load() {
			why += "; the rest of the trace was not sent"
		}
		causes = append(causes, why)
	}
	if d := r.damage; d != nil {
		causes = append(causes, fmt.Sprintf("trace damaged at record %d of %d, the rest of the trace was not played: %s",
			d.Record, man.Records, d.Error))
	}
	if o.records == 0 {
		s.Problems = append(s.Problems, "no record of the trace was in scope")
	}
	sort.Strings(s.Problems)
	s.Problems = append(causes, s.Problems...)
	s.OK = len(s.Problems) == 0
	return s
}

// collectorSettings reads the Go runtime's GOGC ("off" when disabled) and
// soft memory limit ("none" when unset) for run.json: the command sets
// them (--gc-percent, --memory-limit-mib) unless the environment does,
// and they decide how often the collector interrupts the run.
func collectorSettings() (gogc, limit string) {
	samples := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	runtimemetrics.Read(samples)
	gogc, limit = "off", "none"
	if samples[0].Value.Kind() == runtimemetrics.KindUint64 {
		if v := int64(samples[0].Value.Uint64()); v >= 0 { // off reads as -1
			gogc = strconv.FormatInt(v, 10)
		}
	}
	if samples[1].Value.Kind() == runtimemetrics.KindUint64 {
		if v := samples[1].Value.Uint64(); v < math.MaxInt64 {
			limit = fmt.Sprintf("%d MiB", v>>20)
		}
	}
	return gogc, limit
}
