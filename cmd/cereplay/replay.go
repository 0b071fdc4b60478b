package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/pace"
	"github.com/cereplay/cereplay/replay"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "play a trace against Maestro (or cereplay sim) as its sources and agents, and account for every event",
		ArgsUsage: "TRACE",
		UsageText: "cereplay replay TRACE [--source-addr HOST:PORT] [--broker-addr HOST:PORT] [timing] [--out DIR]\n\n" +
			"Examples:\n" +
			"   # the whole trace as fast as the target accepts, consumers created first\n" +
			"   cereplay replay --max --create-consumers traces/default\n" +
			"   # recorded timing, twice as fast, into a Maestro that already saw this trace\n" +
			"   cereplay replay --speed 2 --run-id second traces/default\n" +
			"   # 2,000 spec events per second for 30 seconds, dropping sends more than 5 ms late\n" +
			"   cereplay replay --rate 2000 --duration 30s --late-drop 5ms traces/default\n" +
			"   # two Maestro instances, one shared start instant for several replayers\n" +
			"   cereplay replay --source-addr m1:8090,m2:8090 --broker-addr m1:8091,m2:8091 \\\n" +
			"       --start-at 2026-11-28T10:00:00Z --shard 0/2 traces/default\n" +
			"   # a packed trace over HTTP, refused unless it is the one with this digest\n" +
			"   cereplay replay --max --digest sha256:c076... https://traces.example.com/tiny.crp",
		Description: "replay connects one Subscribe stream per cluster to the broker port and one per source\n" +
			"to the source port, then publishes every spec event on schedule (from one start instant;\n" +
			"a kernel sleep, then a short spin) and every status reply once the spec it answers has\n" +
			"arrived, after the recorded delay. Status replies get the resourceversion the agent\n" +
			"received and a fresh node-1 snowflake sequenceid; --run-id remaps resource ids so a trace\n" +
			"can be replayed into the same Maestro again. Every record ends with one outcome (sent,\n" +
			"failed with its gRPC code, dropped late, skipped (another shard, outside --limit),\n" +
			"delivered, missing, not-triggered (its spec failed), not-sent (the run ended first)),\n" +
			"written to --out with run.json and summary.json. Exit status 0 only when everything was\n" +
			"sent and delivered (see --allow-*). A damaged trace fails the run: with --verify-first\n" +
			"(the default for small traces) it is refused before anything is sent; otherwise every\n" +
			"segment is checked before its first record is played, the run stops at the damage and\n" +
			"the summary names the file, offset and record.\n\n" +
			traceArgUsage + " A URL is read as the trace is\n" +
			"played, a few segments ahead, and nothing is stored on disk; it is read once more to\n" +
			"verify first (--verify-first) and once more to weigh the clusters of a --shard run.\n\n" +
			"Timing: the subscribes at the head of the trace are played first, as fast as possible (or\n" +
			"at --connect-rate); the schedule starts when they are done (or at --start-at) with the\n" +
			"first record after them. Event i is due at T0 + offset_i/speed (or i/rate), never by\n" +
			"adding up gaps; its lateness is measured and reported, and the summary says whether the\n" +
			"schedule was kept (at most 1% of sends later than --late-warn). Paced replays are an open\n" +
			"model: a slow target shows in the Publish latency, not in the schedule (up to\n" +
			"--max-inflight calls in flight). Between sends 1 ms or more apart (up to about\n" +
			"500/s) the pacer runs on a real-time (SCHED_FIFO) thread where the process may: as\n" +
			"root, or after 'sudo setcap cap_sys_nice+ep cereplay'; run.json records\n" +
			"pacer_priority. Paced on one CPU (taskset, a one-CPU container), the replay runs two\n" +
			"Go processors unless GOMAXPROCS is set; run.json records gomaxprocs.\n" +
			"--metrics-listen also serves /debug/pprof/ of the replayer; --cpuprofile FILE profiles a whole run.\n\n" +
			"Every run also writes a timeline (timeline.jsonl: counts, gauges and full HDR histograms per\n" +
			"--interval; histograms.json for the whole run) and, with --target-metrics, the targets' own\n" +
			"Prometheus samples (target-metrics.jsonl); 'cereplay report' and 'cereplay compare' read them.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source-addr", Value: "127.0.0.1:8090", Usage: "Maestro source gRPC address(es), comma-separated"},
			&cli.StringFlag{Name: "broker-addr", Value: "127.0.0.1:8091", Usage: "Maestro broker gRPC address(es), comma-separated; agents are spread over them"},
			&cli.StringFlag{Name: "rest-url", Value: "http://127.0.0.1:8000", Usage: "Maestro REST base URL (for --create-consumers)"},
			&cli.StringFlag{Name: "ca-file", Usage: "CA bundle of the servers' certificates (turns TLS on)"},
			&cli.StringFlag{Name: "cert-file", Usage: "client certificate for mTLS"},
			&cli.StringFlag{Name: "key-file", Usage: "client key for mTLS"},
			&cli.StringFlag{Name: "server-name", Usage: "name to check in the server certificate"},
			&cli.StringFlag{Name: "token-file", Usage: "file holding a bearer token for every call (needs TLS)"},
			&cli.BoolFlag{Name: "create-consumers", Usage: "create the trace's consumers through REST first (409 counts as present)"},
			&cli.StringFlag{Name: "transport", Value: replay.TransportLite, Usage: "gRPC client: \"lite\" (cereplay's own, cheaper per call) or \"grpc-go\" (the SDK's)"},
			&cli.IntFlag{Name: "agents-per-conn", Value: 1, Usage: "agents sharing one connection (each keeps its own stream)"},
			&cli.Float64Flag{Name: "connect-rate", Usage: "agent connects per second at the start (0: as fast as possible)"},
			&cli.Float64Flag{Name: "speed", Value: 1, Usage: "play recorded offsets and reply delays this many times faster"},
			&cli.Float64Flag{Name: "rate", Usage: "spec events per second, evenly spaced, instead of recorded offsets"},
			&cli.BoolFlag{Name: "max", Usage: "send as fast as the target accepts, bounded by --max-inflight"},
			&cli.IntFlag{Name: "max-inflight", Usage: "Publish calls in flight at most, for spec events and for status replies each",
				DefaultText: fmt.Sprintf("%d at --max, %d when paced", replay.DefaultMaxInflight, replay.DefaultPacedInflight)},
			&cli.Int64Flag{Name: "limit", Usage: "play only the first N spec events (and their replies)"},
			&cli.DurationFlag{Name: "duration", Usage: "play only the sends due in the first D after the start"},
			&cli.StringFlag{Name: "start-at", Usage: "start instant (RFC 3339), so several replayers share one schedule; refused when more than a minute (or --late-drop) in the past; a future one is counted down"},
			&cli.DurationFlag{Name: "spin-window", Usage: "busy-wait this long before each send instead of the default (as long as nine in ten of the last 64 wake-ups from the sleep before it needed, 10-100µs; 2% of waits of 10ms or more, up to 1ms); 1.5ms spins all the time at 2,000/s: more precise, one core busy; negative: never spin",
				DefaultText: "adaptive"},
			&cli.DurationFlag{Name: "late-drop", Usage: "drop (and count) sends later than this; 0 sends everything"},
			&cli.DurationFlag{Name: "late-warn", Value: replay.DefaultLateWarn, Usage: "the summary says the schedule was not kept when more than 1% of sends left later than this"},
			&cli.StringFlag{Name: "only", Usage: "play one side only against real clients: 'source' publishes the specs on schedule and matches the statuses real agents send " +
				"(no agent streams), 'agents' opens every agent stream and answers the specs a real source sends with the trace's statuses and delays (a fleet simulator)"},
			&cli.StringFlag{Name: "shard", Usage: "play only shard INDEX/COUNT of the clusters, e.g. 0/4: clusters are spread by their events, by one plan every shard makes alike from the trace (inspect --shards COUNT prints it)"},
			&cli.StringFlag{Name: "run-id", Usage: "remap resource ids under this id, to replay into the same Maestro again"},
			&cli.IntFlag{Name: "clusters-multiplier", Value: 1, Usage: "play every cluster `K` times, copy c >= 1 as <cluster>-x<c+1> with resource ids UUIDv5 of the original and c: K times the agents, works and statuses from the same trace (outcomes numbered record×K+copy; run.json names the rewrite)"},
			&cli.DurationFlag{Name: "settle", Value: replay.DefaultSettle, Usage: "how long to wait at the end for deliveries"},
			&cli.DurationFlag{Name: "publish-timeout", Value: replay.DefaultPublishTimeout, Usage: "a Publish call not answered within this fails (DeadlineExceeded); the replayer keeps the time, the call carries no grpc-timeout, as the SDK's do not; with --transport lite, a connection the target reads nothing from for this long is closed"},
			&cli.DurationFlag{Name: "reconnect-min", Value: replay.DefaultReconnectMin, Usage: "first wait before re-subscribing a lost stream"},
			&cli.DurationFlag{Name: "reconnect-max", Value: replay.DefaultReconnectMax, Usage: "longest wait between re-subscribe attempts"},
			&cli.DurationFlag{Name: "connect-timeout", Value: replay.DefaultConnectTimeout, Usage: "stop the run when streams cannot subscribe within this (naming each address and the cause: connection refused, DNS, TLS)"},
			&cli.DurationFlag{Name: "give-up-after", Value: replay.DefaultGiveUpAfter, Usage: "stop the run when a stream stays down this long mid-run; the rest counts as not sent"},
			&cli.DurationFlag{Name: "stall-timeout", Value: replay.DefaultStallTimeout, Usage: "stop the run when published specs wait this long with none delivered (a target that accepts Publish and delivers nothing)"},
			&cli.Int64Flag{Name: "allow-failed", Usage: "failed sends that still count as success"},
			&cli.Int64Flag{Name: "allow-missing", Usage: "missing deliveries that still count as success"},
			&cli.Int64Flag{Name: "allow-dropped", Usage: "late-dropped sends that still count as success"},
			&cli.BoolFlag{Name: "verify-first", Usage: "check every segment's checksums before sending anything (--verify-first=false: check each segment as it is reached, so a damaged trace is played up to its damage, and fails)",
				DefaultText: fmt.Sprintf("on for traces up to %d MiB decompressed", replay.VerifyAutoMaxRaw>>20)},
			digestFlag(),
			&cli.StringFlag{Name: "out", Usage: "results folder (default runs/<UTC timestamp>, with -2, -3, ... when a run of the same second has it)"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics here during the run, e.g. 127.0.0.1:9100"},
			&cli.StringFlag{Name: "target-metrics", Usage: "Prometheus URL(s) of the targets, comma-separated (e.g. http://maestro:8080/metrics), scraped every --interval into the run folder; a failed scrape is stored as a gap"},
			&cli.DurationFlag{Name: "interval", Value: replay.DefaultInterval, Usage: "step of the run's timeline and of the target scrapes"},
			&cli.Int64Flag{Name: "memory-limit-mib", Value: defaultReplayMemoryLimitMiB, Usage: "soft memory limit of the Go runtime in MiB (GOMEMLIMIT wins when set; 0: none)"},
			&cli.IntFlag{Name: "gc-percent", Value: defaultReplayGCPercent, Usage: "the collector's GOGC under a memory limit: it runs when the heap has grown this many percent over what a collection left live, or at the limit (GOGC wins when set; without a limit the runtime's 100 stays)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the replayer, from opening the trace to the summary, to `FILE` (go tool pprof FILE)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar and notes, only the summary"},
		},
		Action: replayAction,
	}
}

// defaultReplayMemoryLimitMiB is the replayer's default soft memory limit.
// A --max run of 3,000 agents holds a few hundred MiB live (their
// connections, the events in flight), and what the limit leaves above that
// is the room the heap grows into between collections: at --max the
// collector runs each time that room is full, so its CPU falls steeply as
// the room grows. 464 MiB leaves peak RSS under the 512 MB the full
// default trace is held to (README's Performance table,
// bench/replay-max.sh; bench/RESULTS.md has the side-by-side runs).
const defaultReplayMemoryLimitMiB = 464

// defaultReplayGCPercent is the replayer's GOGC under its memory limit.
// With the runtime's 100 a paced replay collected every time its heap
// doubled, every few seconds at 500 sends per second; a collection is what
// made the slowest sends late (its workers take the processors the pacer
// waits for: a run with the collector off had a p99.9 lateness of 0.4 ms
// against 2-8 ms), and each one scans thousands of agents' connections
// and stacks. At 400 the heap grows to five times its live size, where
// the memory limit stops it first: the collector runs about as often at
// --max, where the limit is what triggers it already, and a few times
// less when paced, for a peak RSS still under the limit.
const defaultReplayGCPercent = 400

func replayAction(c *cli.Context) error {
	src, opts, err := traceSource(c)
	if err != nil {
		return err
	}
	cfg, err := replayConfig(c, src)
	if err != nil {
		return err
	}
	cfg.TraceDigest = opts.Digest
	// Thousands of agent connections make garbage quickly; a soft limit
	// makes the collector run before the heap doubles past it (see
	// defaultReplayMemoryLimitMiB).
	mib := c.Int64("memory-limit-mib")
	if mib > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(mib << 20)
	}
	// A GOGC above 100 is bounded by the limit; without one the heap
	// would grow to five times its live size (defaultReplayGCPercent).
	if limited := mib > 0 || os.Getenv("GOMEMLIMIT") != ""; limited && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(c.Int("gc-percent"))
	}
	pacerProcessor(cfg.Max)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if !c.Bool("quiet") {
		cfg.Log = c.App.ErrWriter
	}
	bar := newProgress(c.App.ErrWriter, c.Bool("quiet"), "replay")
	cfg.Progress = bar.callback()
	cfg.ConsumerProgress = bar.phaseCallback("consumers", "consumers")
	defer bar.Finish()
	stopProfile, err := startCPUProfile(c.String("cpuprofile"))
	if err != nil {
		return err
	}
	res, err := replay.Run(ctx, cfg)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if res != nil && res.Summary != nil {
		if werr := res.Summary.WriteText(c.App.Writer); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintf(c.App.Writer, "  results in %s\n", res.Dir)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("replay: %s", strings.Join(res.Summary.Problems, "; "))
	}
	return nil
}

// startCPUProfile starts writing a CPU profile to file (none when file is
// ""), and returns what stops it and closes the file.
func startCPUProfile(file string) (func() error, error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("replay: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay: --cpuprofile %s: %w", file, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("replay: --cpuprofile: %w", err)
		}
		return nil
	}, nil
}

// pacerProcessor gives a paced replay two Go processors where the process
// may use one CPU only (taskset, a one-CPU container), unless GOMAXPROCS is
// set. With one processor the pacer, woken from its sleep, waits in the run
// queue behind the stream goroutines that hold the processor (runtime
// traces of such runs showed it waiting for milliseconds after its kernel
// sleep ended without a free processor); with two, a woken pacer usually
// finds the second one free, and the kernel shares the CPU between their
// threads by priority, where the pacer's real-time thread comes first.
func pacerProcessor(max bool) {
	if !max && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

// outDir is --out, or else a folder under root named by the UTC second,
// with -2, -3, ... appended while that name is taken: two replays started
// within one second (a script's back-to-back short runs) each get a folder
// instead of the second failing on the first one's results.
func outDir(out, root string, now time.Time) string {
	if out != "" {
		return out
	}
	base := filepath.Join(root, now.UTC().Format("20060102T150405Z"))
	dir := base
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// replayConfig maps the flags to a replay.Config, returning usage errors
// for values that cannot be right.
func replayConfig(c *cli.Context, dir string) (replay.Config, error) {
	cfg := replay.Config{
		Trace:              dir,
		Out:                outDir(c.String("out"), "runs", time.Now()),
		SourceAddrs:        []string{c.String("source-addr")},
		BrokerAddrs:        []string{c.String("broker-addr")},
		RESTURL:            c.String("rest-url"),
		CreateConsumers:    c.Bool("create-consumers"),
		Transport:          c.String("transport"),
		AgentsPerConn:      c.Int("agents-per-conn"),
		ConnectRate:        c.Float64("connect-rate"),
		Speed:              c.Float64("speed"),
		Rate:               c.Float64("rate"),
		Max:                c.Bool("max"),
		MaxInflight:        c.Int("max-inflight"),
		Limit:              c.Int64("limit"),
		Duration:           c.Duration("duration"),
		LateDrop:           c.Duration("late-drop"),
		LateWarn:           c.Duration("late-warn"),
		Clock:              pace.NewPreciseClock(c.Duration("spin-window")),
		RunID:              c.String("run-id"),
		ClustersMultiplier: c.Int("clusters-multiplier"),
		Settle:             c.Duration("settle"),
		PublishTimeout:     c.Duration("publish-timeout"),
		ReconnectMin:       c.Duration("reconnect-min"),
		ReconnectMax:       c.Duration("reconnect-max"),
		ConnectTimeout:     c.Duration("connect-timeout"),
		GiveUpAfter:        c.Duration("give-up-after"),
		StallTimeout:       c.Duration("stall-timeout"),
		AllowFailed:        c.Int64("allow-failed"),
		AllowMissing:       c.Int64("allow-missing"),
		AllowDropped:       c.Int64("allow-dropped"),
		MetricsListen:      c.String("metrics-listen"),
		TargetMetrics:      []string{c.String("target-metrics")},
		Interval:           c.Duration("interval"),
		Version:            version,
		TLS: replay.TLS{
			CAFile: c.String("ca-file"), CertFile: c.String("cert-file"), KeyFile: c.String("key-file"),
			ServerName: c.String("server-name"), TokenFile: c.String("token-file"),
		},
	}
	// Each numeric flag with the range it must be in, checked in this order.
	ranges := []struct {
		name string
		ok   bool
	}{
		{"speed", c.Float64("speed") > 0},
		{"rate", c.Float64("rate") >= 0},
		{"connect-rate", c.Float64("connect-rate") >= 0},
		{"agents-per-conn", c.Int("agents-per-conn") >= 1},
		{"max-inflight", c.Int("max-inflight") >= 0},
		{"limit", c.Int64("limit") >= 0},
		{"duration", c.Duration("duration") >= 0},
		{"late-drop", c.Duration("late-drop") >= 0},
		{"late-warn", c.Duration("late-warn") > 0},
		{"settle", c.Duration("settle") >= 0},
		{"interval", c.Duration("interval") > 0},
		{"publish-timeout", c.Duration("publish-timeout") > 0},
		{"reconnect-min", c.Duration("reconnect-min") > 0},
		{"connect-timeout", c.Duration("connect-timeout") > 0},
		{"give-up-after", c.Duration("give-up-after") > 0},
		{"stall-timeout", c.Duration("stall-timeout") > 0},
		{"allow-failed", c.Int64("allow-failed") >= 0},
		{"allow-missing", c.Int64("allow-missing") >= 0},
		{"allow-dropped", c.Int64("allow-dropped") >= 0},
		{"memory-limit-mib", c.Int64("memory-limit-mib") >= 0},
	}
	for _, r := range ranges {
		if !r.ok {
			return cfg, usagef("replay: --%s %v: out of range", r.name, c.Value(r.name))
		}
	}
	if c.Duration("reconnect-min") > c.Duration("reconnect-max") {
		return cfg, usagef("replay: --reconnect-min %v is greater than --reconnect-max %v", c.Duration("reconnect-min"), c.Duration("reconnect-max"))
	}
	modes := 0
	for _, set := range []bool{c.IsSet("speed"), c.IsSet("rate"), c.Bool("max")} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return cfg, usagef("replay: --speed, --rate and --max exclude each other")
	}
	if c.IsSet("verify-first") {
		cfg.VerifyFirst = replay.VerifyOff
		if c.Bool("verify-first") {
			cfg.VerifyFirst = replay.VerifyOn
		}
	}
	if s := c.String("start-at"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return cfg, usagef("replay: --start-at %q: want an RFC 3339 instant such as 2026-11-28T10:00:00Z", s)
		}
		if err := replay.CheckStartAt(t, time.Now(), c.Duration("late-drop")); err != nil {
			return cfg, usagef("replay: %v", err)
		}
		cfg.StartAt = t
	}
	switch o := replay.Side(c.String("only")); o {
	case replay.SideBoth, replay.SideSource, replay.SideAgents:
		cfg.Only = o
	default:
		return cfg, usagef("replay: --only %q: want source or agents", o)
	}
	if s := c.String("shard"); s != "" {
		sh, err := replay.ParseShard(s)
		if err != nil {
			return cfg, usagef("replay: --shard: %v", err)
		}
		cfg.Shard = sh
	}
	if (c.String("cert-file") == "") != (c.String("key-file") == "") {
		return cfg, usagef("replay: --cert-file and --key-file go together")
	}
	if c.String("token-file") != "" && c.String("ca-file") == "" && c.String("cert-file") == "" {
		return cfg, usagef("replay: --token-file needs TLS (--ca-file): the token would travel in clear text")
	}
	return cfg, nil
}
