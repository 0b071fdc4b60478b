package replay

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cereplay/cereplay/pace"
)

// Config is everything a replay needs. The zero value of every optional
// field means its default (see DefaultConfig).
type Config struct {
	// Trace is the trace to play: a folder, a packed file or the http(s)
	// URL of one (format.OpenSource).
	Trace string
	// TraceDigest, when set, refuses any trace whose digest differs,
	// before anything is sent.
	TraceDigest string
	// VerifyFirst says whether every segment is checked (format.Verify)
	// before anything is sent; VerifyAuto checks traces small enough to
	// check in well under a second (VerifyAutoMaxRaw). Without it each
	// segment is still checked whole before its first record is played.
	VerifyFirst VerifyMode
	// Out is the results folder; "" means runs/<UTC timestamp>.
	Out string

	// SourceAddrs and BrokerAddrs are the gRPC addresses of the source port
	// (:8090) and the broker port (:8091) of one or several Maestro
	// instances. Agents are spread over the broker addresses; a cluster's
	// specs go to the source address paired with its broker address.
	SourceAddrs []string
	BrokerAddrs []string
	// RESTURL is Maestro's REST base URL, for CreateConsumers.
	RESTURL string
	// TLS secures every connection (and carries the bearer token).
	TLS TLS

	// CreateConsumers creates the trace's consumers through REST first.
	CreateConsumers bool
	// Transport is the client the calls are made with: TransportLite
	// (the default) or TransportGRPCGo.
	Transport string
	// AgentsPerConn shares one connection between this many agents (each
	// still has its own stream); 0 or 1 means one connection per agent.
	AgentsPerConn int
	// ConnectRate paces the agent connects at the start, per second;
	// 0 connects as fast as ConnectWorkers allow.
	ConnectRate float64
	// ConnectWorkers bounds the connects in progress; default 64.
	ConnectWorkers int

	// Timing. Speed scales recorded offsets and reply delays (default 1).
	// Rate > 0 spaces spec events evenly at that many per second instead.
	// Max sends as fast as MaxInflight allows, with replies sent as soon
	// as their spec arrives. Pacer, when set, overrides all three.
	Speed float64
	Rate  float64
	Max   bool
	Pacer pace.Pacer
	// MaxInflight bounds the Publish calls in flight (for spec events and
	// for status replies each); 0 means DefaultMaxInflight at Max and
	// DefaultPacedInflight otherwise.
	MaxInflight int
	// Limit stops after this many spec events (source>server records);
	// Duration stops scheduling sends due later than this after T0.
	Limit    int64
	Duration time.Duration
	// StartAt is T0, so several replayers can share one schedule; zero
	// means when the agents are connected.
	StartAt time.Time
	// LateDrop, when > 0, drops (and counts) sends later than this.
	LateDrop time.Duration
	// LateWarn is how late a send may leave with the schedule still kept
	// (see ScheduleSummary); 0 means DefaultLateWarn.
	LateWarn time.Duration
	// Shard plays only the clusters of one shard.
	Shard Shard
	// Only plays one side of the traffic (see Side): the source against
	// real agents, or the agents against a real source.
	Only Side

	// RunID remaps resource ids so the trace can be replayed again into
	// the same Maestro.
	RunID string
	// ClustersMultiplier, when > 1, plays every cluster of the trace this
	// many times under derived names and resource ids (see multiplier).
	ClustersMultiplier int

	// Settle is how long to wait at the end for deliveries; default 30s.
	Settle time.Duration
	// PublishTimeout bounds one Publish call; default 30s.
	PublishTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between reconnect
	// attempts (defaults 1s and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// ConnectTimeout bounds how long the connect phase waits for streams
	// whose first subscribe failed (default 10s); then the run stops,
	// naming the addresses and causes. GiveUpAfter stops a run whose
	// target stays unreachable this long mid-run (a stream down that
	// long; default 2m).
	ConnectTimeout, GiveUpAfter time.Duration
	// StallTimeout stops a run whose published specs wait this long with
	// none delivered (default 30s): a target that accepts Publish and
	// delivers nothing.
	StallTimeout time.Duration

	// Tolerances for success: how many failed sends, missing deliveries and
	// late-dropped sends still count as a successful run.
	AllowFailed, AllowMissing, AllowDropped int64

	// MetricsListen serves Prometheus metrics during the run ("" = off).
	MetricsListen string
	// TargetMetrics are Prometheus endpoints of the targets (Maestro's
	// /metrics) scraped every Interval into the run folder.
	TargetMetrics []string
	// Interval is the timeline's step and the scrape period; default
	// DefaultInterval.
	Interval time.Duration
	// Clock is the time source; nil means PreciseClock{}.
	Clock pace.Clock
	// Progress, when set, is called about ten times a second with the trace
	// records done and the total.
	Progress func(done, total int64)
	// ConsumerProgress, when set, is called as consumers are created
	// (CreateConsumers) with the consumers done and the total.
	ConsumerProgress func(done, total int64)
	// Log receives one-line notes (reconnects, phases); nil discards them.
	Log io.Writer
	// Version is written into run.json.
	Version string
}

// VerifyMode says when Run verifies the whole trace before sending.
type VerifyMode int

const (
	VerifyAuto VerifyMode = iota // when the trace is at most VerifyAutoMaxRaw
	VerifyOn
	VerifyOff
)

// VerifyAutoMaxRaw is the largest trace (decompressed bytes, as the
// manifest says) that VerifyAuto checks before sending: a 63 MiB trace
// verifies in a third of a second on the 2-core reference machine, so
// this much takes about a second, not worth skipping for the certainty
// that nothing of a damaged trace is sent. Larger traces are checked one
// segment at a time as they are played.
const VerifyAutoMaxRaw = 256 << 20

// verify says whether to verify a trace of raw bytes before sending.
func (m VerifyMode) verify(raw int64) bool {
	return m == VerifyOn || m == VerifyAuto && raw <= VerifyAutoMaxRaw
}

// Defaults.
//
// DefaultMaxInflight is small because more buys no throughput once the
// target is saturated and costs the replayer dearly: every call in flight
// holds its event, and at --max the replies waiting behind them (up to 4x
// and 8x the bound, see backpressure) hold theirs, until garbage collection
// runs nonstop (bench/RESULTS.md has the figures). 256 calls at 20 ms each
// still allow 12,800 events/s against a Maestro farther away.
//
// DefaultPacedInflight is the bound when the schedule sets the pace
// (speed or rate): it only keeps a stalled target from growing the
// replayer without limit. A paced replay is an open model: a send that
// waits for a free slot is late, so a bound the target's latency can reach
// turns the target's slowness into send lateness (coordinated omission).
const (
	DefaultSettle         = 30 * time.Second
	DefaultLateWarn       = time.Millisecond
	DefaultMaxInflight    = 256
	DefaultPacedInflight  = 8192
	DefaultConnectWorkers = 64
	DefaultPublishTimeout = 30 * time.Second
	DefaultReconnectMin   = time.Second
	DefaultReconnectMax   = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultGiveUpAfter    = 2 * time.Minute
	DefaultStallTimeout   = 30 * time.Second
)

// ErrConfig marks a Config that cannot run.
var ErrConfig = errors.New("replay: bad configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// withDefaults returns c with defaults filled in, or an error naming the
// first field that is wrong.
// maxClustersMultiplier bounds --clusters-multiplier: every copy of a
// cluster is an agent stream of its own.
const maxClustersMultiplier = 1000

func (c Config) withDefaults() (Config, error) {
	if c.Trace == "" {
		return c, configErr("no trace folder")
	}
	c.SourceAddrs = splitAddrs(c.SourceAddrs)
	c.BrokerAddrs = splitAddrs(c.BrokerAddrs)
	if len(c.SourceAddrs) == 0 {
		return c, configErr("no source address (--source-addr)")
	}
	if len(c.BrokerAddrs) == 0 {
		return c, configErr("no broker address (--broker-addr)")
	}
	if c.ClustersMultiplier < 0 || c.ClustersMultiplier > maxClustersMultiplier {
		return c, configErr("--clusters-multiplier %d is outside 1..%d", c.ClustersMultiplier, maxClustersMultiplier)
	}
	modes := 0
	if c.Rate > 0 {
		modes++
	}
	if c.Max {
		modes++
	}
	if c.Speed != 0 && c.Speed != 1 {
		modes++
	}
	switch {
	case modes > 1:
		return c, configErr("--speed, --rate and --max exclude each other")
	case c.Speed < 0:
		return c, configErr("speed %v: must be > 0", c.Speed)
	case c.Rate < 0:
		return c, configErr("rate %v: must be > 0", c.Rate)
	case c.Limit < 0:
		return c, configErr("limit %d: must be >= 0", c.Limit)
	case c.Duration < 0, c.LateDrop < 0, c.LateWarn < 0, c.Settle < 0, c.Interval < 0:
		return c, configErr("durations must be >= 0")
	case c.ConnectRate < 0:
		return c, configErr("connect rate %v: must be >= 0", c.ConnectRate)
	case c.AgentsPerConn < 0 || c.MaxInflight < 0 || c.ConnectWorkers < 0:
		return c, configErr("counts must be >= 0")
	case c.Transport != "" && c.Transport != TransportLite && c.Transport != TransportGRPCGo:
		return c, configErr("--transport %q: want %q or %q", c.Transport, TransportLite, TransportGRPCGo)
	case c.Only != SideBoth && c.Only != SideSource && c.Only != SideAgents:
		return c, configErr("--only %q: want %q or %q", c.Only, SideSource, SideAgents)
	}
	if c.Speed == 0 {
		c.Speed = 1
	}
	if c.LateWarn == 0 {
		c.LateWarn = DefaultLateWarn
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultPacedInflight
		if c.Max {
			c.MaxInflight = DefaultMaxInflight
		}
	}
	if c.ConnectWorkers == 0 {
		c.ConnectWorkers = DefaultConnectWorkers
	}
	if c.AgentsPerConn == 0 {
		c.AgentsPerConn = 1
	}
	if c.Transport == "" {
		c.Transport = TransportLite
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	switch {
	case c.ReconnectMax == 0:
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	case c.ReconnectMax < c.ReconnectMin:
		return c, configErr("reconnect min %v is greater than reconnect max %v", c.ReconnectMin, c.ReconnectMax)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	c.TargetMetrics = splitAddrs(c.TargetMetrics)
	if c.Clock == nil {
		c.Clock = pace.NewPreciseClock(0)
	}
	if err := CheckStartAt(c.StartAt, c.Clock.Now(), c.LateDrop); err != nil {
		return c, configErr("%v", err)
	}
	if c.Pacer == nil {
		switch {
		case c.Max:
			c.Pacer = pace.MaxPacer{}
		case c.Rate > 0:
			c.Pacer = pace.RatePacer{Rate: c.Rate}
		default:
			c.Pacer = pace.SpeedPacer{Speed: c.Speed}
		}
	}
	return c, nil
}

// CheckStartAt refuses a start instant (--start-at) so far in the past at
// now that the schedule would begin behind by more than the larger of a
// minute and lateDrop: every send would be late, or dropped. A zero start
// means none.
func CheckStartAt(start, now time.Time, lateDrop time.Duration) error {
	if start.IsZero() {
		return nil
	}
	limit := max(lateDrop, time.Minute)
	if past := now.Sub(start); past > limit {
		return fmt.Errorf("--start-at %s is %v in the past (more than %v, the larger of a minute and --late-drop): every send would be late",
			start.UTC().Format(time.RFC3339), past.Round(time.Second), limit)
	}
	return nil
}

// splitAddrs flattens comma-separated address lists.
func splitAddrs(in []string) []string {
	var out []string
	for _, s := range in {
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// mode names the timing mode for run.json and the summary.
func (c Config) mode() string {
	switch {
	case c.Max:
		return "max"
	case c.Rate > 0:
		return fmt.Sprintf("rate %g/s", c.Rate)
	default:
		return fmt.Sprintf("speed %gx", c.Speed)
	}
}
