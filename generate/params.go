package generate

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bwmarrin/snowflake"

	"github.com/cereplay/cereplay/format"
)

// Params are the knobs of a generated trace. Every field is a flag of
// `cereplay generate` and is recorded in the trace's manifest, so a trace
// says how to make it again.
type Params struct {
	Clusters        int     // consumers maestro-cluster-1 ... maestro-cluster-N
	ClusterPrefix   string  // cluster i is named ClusterPrefix + i (from 1)
	WorksPerCluster int     // works <cluster>-gb-0 ... per cluster
	SourceID        string  // the source client's id (CloudEvent source of spec events)
	Rate            float64 // works created per second

	// Workloads are the bundles of the works, mixed by weight; none: the
	// guestbook.
	Workloads []WorkloadSpec

	// After the creates, UpdatesPerWork rounds of spec updates, then with
	// Delete a round of spec deletes, each over every work in Order at
	// Rate. A work's next spec comes after its last status of the round
	// before, as a source that waits for what it changed.
	UpdatesPerWork int
	Delete         bool

	// Then, with Churn, a steady state: Churn spec events a second for
	// ChurnFor, each a create, an update or a delete, over the works
	// that are live.
	Churn    float64
	ChurnFor time.Duration

	// ResyncReconnects adds a fleet restart before the churn: every agent
	// subscribes again and sends its spec resync request.
	ResyncReconnects bool

	Order    Order // the order works are created in
	Creators int   // parallel creators of OrderScaleTest

	Status         StatusShape // what the agents report
	StatusUpdates  int         // 1: one status per work; 2: Applied, then Available
	ApplyDelay     Delay       // spec arrival to the (first) status
	AvailableDelay Delay       // Applied to Available, when StatusUpdates is 2

	SubscribeBatch int           // agents subscribe in batches of this many...
	SubscribeGap   time.Duration // ...one every SubscribeGap...
	SubscribePause time.Duration // ...with this pause after each batch
	CreateAfter    time.Duration // from the last subscribe to the first create

	Seed      int64     // seeds every random choice (event ids, delays, workloads)
	StartTime time.Time // the wall-clock instant of offset 0 (event times)

	SegmentSize int64 // raw bytes per segment; 0: the format's default (recorded as its value)
	Level       int   // zstd level; 0: the format's default (recorded as its value)
	Workers     int   // compression workers, at most format.MaxWorkers(); 0: GOMAXPROCS. Output does not depend on it.

	workloadDigest string // set by Generate once the workload files are read
}

// DefaultParams returns the workload of the maestro-addon scale test:
// 3,000 clusters × 50 guestbook works created at 20 per second by source
// "maestro", one realistic status per work, agents subscribing first in
// batches of 100 with a 10s pause after each batch.
func DefaultParams() Params {
	return Params{
		Clusters:        3000,
		ClusterPrefix:   "maestro-cluster-",
		WorksPerCluster: 50,
		SourceID:        "maestro",
		Rate:            20,
		Order:           OrderScaleTest,
		Creators:        6,
		Status:          StatusRealistic,
		StatusUpdates:   1,
		ApplyDelay:      DefaultApplyDelay,
		AvailableDelay:  DefaultAvailableDelay,
		SubscribeBatch:  100,
		SubscribeGap:    10 * time.Millisecond,
		SubscribePause:  10 * time.Second,
		CreateAfter:     10 * time.Second,
		Seed:            1,
		StartTime:       time.Date(2024, 12, 20, 8, 30, 0, 0, time.UTC),
		SegmentSize:     format.DefaultSegmentSize,
		Level:           DefaultLevel,
	}
}

// DefaultLevel is the zstd level of generated traces: the fastest, because
// the compressor is most of what generating costs, and the trace it makes
// is only a few percent larger than at the format's default level 3, well
// within generate's size target (FORMAT.md §6 "Compression" has the
// figures). --level 3 gives the format's default, which reads a little
// cheaper.
const DefaultLevel = 1

// resolved returns p with the format's defaults spelled out, so the
// manifest records the values the bytes depend on, not "default": a
// trace must be reproducible after the format's defaults change.
func (p Params) resolved() Params {
	if p.SegmentSize == 0 {
		p.SegmentSize = format.DefaultSegmentSize
	}
	if p.Level == 0 {
		p.Level = format.DefaultLevel
	}
	return p
}

// minSegmentSize is the smallest segment the format's Writer accepts.
const minSegmentSize = 1 << 10

// consumerNamesSize bounds the bytes the cluster names take in the
// manifest: each is a quoted, indented line of its own. Half the manifest's
// limit leaves the rest to segments and counts.
func (p *Params) consumerNamesSize() int64 {
	return int64(p.Clusters) * int64(len(p.ClusterPrefix)+len(strconv.Itoa(p.Clusters))+8)
}

// WorkNameInfix joins a cluster name and a work index into a work name,
// as the scale test names its guestbook works: <cluster>-gb-<i>.
const WorkNameInfix = "-gb-"

// maxWorks bounds clusters × works per cluster: about 130 GB of messages.
// The creation order is kept in memory (4 bytes a work) and, at absurd
// rates, every status can be pending at once (about 100 bytes each).
const maxWorks = 10_000_000

// dnsLabel is an RFC 1123 label: what a consumer name must be.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ErrParams wraps every invalid parameter.
var ErrParams = errors.New("generate: invalid parameters")

func paramErr(flag, format string, args ...any) error {
	return fmt.Errorf("%w: --%s: %s", ErrParams, flag, fmt.Sprintf(format, args...))
}

// Validate reports the first parameter that cannot make a trace, naming
// its flag.
func (p *Params) Validate() error {
	switch {
	case p.Clusters < 1:
		return paramErr("clusters", "must be at least 1, got %d", p.Clusters)
	case p.WorksPerCluster < 1:
		return paramErr("works-per-cluster", "must be at least 1, got %d", p.WorksPerCluster)
	case int64(p.Clusters)*int64(p.WorksPerCluster) > maxWorks:
		return paramErr("clusters", "%d clusters × %d works is more than %d works", p.Clusters, p.WorksPerCluster, maxWorks)
	case p.consumerNamesSize() > format.MaxManifestSize/2:
		return paramErr("clusters", "%d clusters named %s<i> take %d MiB of the manifest, more than half the %d MiB readers accept",
			p.Clusters, p.ClusterPrefix, p.consumerNamesSize()>>20, format.MaxManifestSize>>20)
	case p.SourceID == "" || !utf8.ValidString(p.SourceID) || strings.IndexFunc(p.SourceID, unicode.IsControl) >= 0:
		return paramErr("source-id", "%q: want a non-empty UTF-8 string without control characters", p.SourceID)
	case math.IsNaN(p.Rate) || p.Rate <= 0 || p.Rate > 1e9:
		return paramErr("rate", "must be in (0, 1e9] works per second, got %v", p.Rate)
	case p.Creators < 1:
		return paramErr("creators", "must be at least 1, got %d", p.Creators)
	case p.StatusUpdates != 1 && p.StatusUpdates != 2:
		return paramErr("status-updates", "must be 1 or 2, got %d", p.StatusUpdates)
	case p.Status == StatusScaleTest && p.StatusUpdates != 1:
		return paramErr("status-updates", "the scale-test status shape reports once; use --status realistic for 2")
	case p.SubscribeBatch < 1:
		return paramErr("subscribe-batch", "must be at least 1, got %d", p.SubscribeBatch)
	case p.SubscribeGap < 0:
		return paramErr("subscribe-gap", "must not be negative")
	case p.SubscribePause < 0:
		return paramErr("subscribe-pause", "must not be negative")
	case p.CreateAfter < 0:
		return paramErr("create-after", "must not be negative")
	case p.StartTime.Before(time.UnixMilli(snowflake.Epoch)) || p.StartTime.Year() > 9000:
		return paramErr("start-time", "%s is outside 2010-11-04 (the snowflake epoch) .. 9000", p.StartTime.Format(time.RFC3339))
	case p.SegmentSize != 0 && (p.SegmentSize < minSegmentSize || p.SegmentSize > format.MaxSegmentSize):
		return paramErr("segment-size", "%d is outside [%d, %d] bytes (0: the format's default)", p.SegmentSize, minSegmentSize, format.MaxSegmentSize)
	case p.Level < 0 || p.Level > 22:
		return paramErr("level", "%d is outside 1..22 (0: the format's default)", p.Level)
	case p.Workers < 0 || p.Workers > format.MaxWorkers():
		return paramErr("workers", "%d is outside 1..%d (4 × the %d CPUs Go uses)",
			p.Workers, format.MaxWorkers(), runtime.GOMAXPROCS(0))
	}
	if err := p.validateWorkloads(); err != nil {
		return err
	}
	switch {
	case p.UpdatesPerWork < 0 || p.UpdatesPerWork > maxUpdatesPerWork:
		return paramErr("updates-per-work", "must be in 0..%d, got %d", maxUpdatesPerWork, p.UpdatesPerWork)
	case p.Works()*int64(p.rounds()) > 4*maxWorks:
		return paramErr("updates-per-work", "%d works × %d spec events each is more than %d spec events", p.Works(), p.rounds(), 4*maxWorks)
	case math.IsNaN(p.Churn) || p.Churn < 0 || p.Churn > 1e9:
		return paramErr("churn", "must be in [0, 1e9] spec events per second, got %v", p.Churn)
	case p.ChurnFor < 0:
		return paramErr("churn-for", "must not be negative")
	case p.Churn > 0 && p.ChurnFor <= 0:
		return paramErr("churn-for", "--churn needs how long it lasts")
	case p.Churn > 0 && p.churnPeriod() < 1:
		return paramErr("churn", "%v per second is more than one per nanosecond", p.Churn)
	case p.Churn > 0 && p.churnOps() > maxWorks:
		return paramErr("churn-for", "%s at %v per second is more than %d churn events", p.ChurnFor, p.Churn, maxWorks)
	}
	if _, err := ParseOrder(p.Order.String()); err != nil {
		return paramErr("order", "%v", err)
	}
	if _, err := ParseStatusShape(p.Status.String()); err != nil {
		return paramErr("status", "%v", err)
	}
	if err := p.ApplyDelay.Validate(); err != nil {
		return paramErr("apply-delay", "%v", err)
	}
	if p.StatusUpdates == 2 {
		if err := p.AvailableDelay.Validate(); err != nil {
			return paramErr("available-delay", "%v", err)
		}
	}
	for _, name := range []string{p.clusterName(0), p.clusterName(p.Clusters - 1)} {
		if len(name) > 63 || !dnsLabel.MatchString(name) {
			return paramErr("cluster-prefix", "cluster name %q is not an RFC 1123 label (lower-case letters, digits and '-', at most 63)", name)
		}
	}
	if err := p.period(); err != nil {
		return err
	}
	if span := p.maxSpan(); span > maxTraceSpan {
		return paramErr("rate", "the trace would span %.0f years (rate, delays and subscribe pauses too long); at most %.0f are supported",
			span/float64(365*24*time.Hour), maxTraceSpan/float64(365*24*time.Hour))
	}
	return nil
}

// maxTraceSpan bounds how long a trace may last (about 3 years), far
// from where offsets in nanoseconds would overflow.
const maxTraceSpan = float64(1e17)

// maxSpan is the longest the trace can last, in nanoseconds, computed in
// floating point so that absurd parameters cannot overflow it.
func (p *Params) maxSpan() float64 {
	batches := float64((p.Clusters + p.SubscribeBatch - 1) / p.SubscribeBatch)
	span := batches*float64(p.SubscribePause) + float64(p.Clusters)*float64(p.SubscribeGap) + float64(p.CreateAfter)
	reply := float64(p.ApplyDelay.max())
	if p.StatusUpdates == 2 {
		reply += float64(p.AvailableDelay.max())
	}
	// Each round of specs waits for the statuses of the one before.
	rounds := float64(p.rounds())
	span += rounds * (float64(p.Works())*float64(p.createPeriod()) + reply)
	if p.Churn > 0 {
		span += float64(p.ChurnFor) + reply
	}
	if p.ResyncReconnects {
		span += float64(reconnectMax + time.Second)
	}
	return span
}

// period returns an error when the rate gives no whole-nanosecond period.
func (p *Params) period() error {
	if d := p.createPeriod(); d < 1 {
		return paramErr("rate", "%v works per second is faster than one per nanosecond", p.Rate)
	}
	return nil
}

// createPeriod is the time between two creates, in whole nanoseconds:
// integer offsets keep the schedule exact however long the trace.
func (p *Params) createPeriod() time.Duration {
	return time.Duration(math.Round(1e9 / p.Rate))
}

func (p *Params) clusterName(i int) string {
	return p.ClusterPrefix + strconv.Itoa(i+1)
}

// Works returns the number of works (spec events) of the trace.
func (p *Params) Works() int64 { return int64(p.Clusters) * int64(p.WorksPerCluster) }

// Records returns the number of records the trace holds: one source
// subscribe, one subscribe per agent, and per work a spec and its status
// reports.
//
// With churn it is an upper bound (every churn event a create): which
// events the churn draws is known only by making them.
func (p *Params) Records() int64 {
	return 1 + int64(p.Clusters) + p.Works()*int64(1+p.StatusUpdates) + p.Works()*2*int64(p.rounds()-1) +
		p.churnOps()*int64(1+p.StatusUpdates) + p.reconnectRecords()
}

// reconnectRecords is a subscribe and a resync request per agent, with
// ResyncReconnects.
func (p *Params) reconnectRecords() int64 {
	if !p.ResyncReconnects {
		return 0
	}
	return 2 * int64(p.Clusters)
}

// rounds is how many spec events each work gets: its create, its updates
// and its delete. Each of the later ones is answered by one status.
func (p *Params) rounds() int {
	n := 1 + p.UpdatesPerWork
	if p.Delete {
		n++
	}
	return n
}

// maxUpdatesPerWork bounds --updates-per-work: versions stay far within
// the int32 the SDK sends.
const maxUpdatesPerWork = 1000

// Map returns every parameter that shapes the trace's content as flag
// name → value, the form the manifest records. Workers is left out: the
// output does not depend on it.
func (p *Params) Map() map[string]string {
	m := map[string]string{
		"workload":          p.workloadValue(),
		"clusters":          strconv.Itoa(p.Clusters),
		"cluster-prefix":    p.ClusterPrefix,
		"works-per-cluster": strconv.Itoa(p.WorksPerCluster),
		"source-id":         p.SourceID,
		"rate":              strconv.FormatFloat(p.Rate, 'g', -1, 64),
		"order":             p.Order.String(),
		"creators":          strconv.Itoa(p.Creators),
		"status":            p.Status.String(),
		"status-updates":    strconv.Itoa(p.StatusUpdates),
		"apply-delay":       p.ApplyDelay.String(),
		"subscribe-batch":   strconv.Itoa(p.SubscribeBatch),
		"subscribe-gap":     p.SubscribeGap.String(),
		"subscribe-pause":   p.SubscribePause.String(),
		"create-after":      p.CreateAfter.String(),
		"seed":              strconv.FormatInt(p.Seed, 10),
		"start-time":        p.StartTime.UTC().Format(time.RFC3339Nano),
		"segment-size":      strconv.FormatInt(p.SegmentSize, 10),
		"level":             strconv.Itoa(p.Level),
	}
	if p.StatusUpdates == 2 {
		m["available-delay"] = p.AvailableDelay.String()
	}
	if p.UpdatesPerWork != 0 {
		m["updates-per-work"] = strconv.Itoa(p.UpdatesPerWork)
	}
	if p.Delete {
		m["delete"] = "true"
	}
	if p.Churn > 0 {
		m["churn"] = strconv.FormatFloat(p.Churn, 'g', -1, 64)
		m["churn-for"] = p.ChurnFor.String()
	}
	if p.ResyncReconnects {
		m["resync-reconnects"] = "true"
	}
	if p.workloadDigest != "" {
		m["workload-sha256"] = p.workloadDigest
	}
	return m
}

// workloadValue is the manifest's record of the workloads: the --workload
// values joined by commas.
func (p *Params) workloadValue() string {
	if len(p.Workloads) == 0 {
		return GuestbookWorkload
	}
	v := make([]string, len(p.Workloads))
	for i, w := range p.Workloads {
		v[i] = w.String()
	}
	return strings.Join(v, ",")
}

// validateWorkloads checks the --workload values (their files are read
// when the trace is made).
func (p *Params) validateWorkloads() error {
	for _, w := range p.Workloads {
		switch {
		case w.Path == "" || strings.ContainsAny(w.Path, ",\n"):
			return paramErr("workload", "%q: want a non-empty path without commas or newlines", w.Path)
		case w.Weight < 1:
			return paramErr("workload", "%s: weight %d, want at least 1", w.Path, w.Weight)
		}
	}
	return nil
}

// Command returns the command line that makes this trace again (less
// --out), with every parameter spelled out in a fixed order.
func (p *Params) Command() string {
	m := p.Map()
	delete(m, "workload")
	delete(m, "workload-sha256")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("cereplay generate")
	for _, w := range p.Workloads {
		fmt.Fprintf(&b, " --workload %s", shellQuote(w.String()))
	}
	for _, k := range keys {
		if k == "delete" || k == "resync-reconnects" { // a boolean flag takes no value
			b.WriteString(" --" + k)
			continue
		}
		fmt.Fprintf(&b, " --%s %s", k, shellQuote(m[k]))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:=/+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ParamsFromMap parses the parameters a manifest records (Params.Map)
// back, so a trace can be made again from its own manifest. A missing
// key keeps its default; an unknown key is an error, since it would mean
// the trace was made by a generator that knows more than this one.
func ParamsFromMap(m map[string]string) (Params, error) {
	p := DefaultParams()
	for k, v := range m {
		var err error
		switch k {
		case "workload":
			p.Workloads = nil
			if v != GuestbookWorkload {
				for _, f := range strings.Split(v, ",") {
					var w WorkloadSpec
					if w, err = ParseWorkloadSpec(f); err != nil {
						break
					}
					p.Workloads = append(p.Workloads, w)
				}
			}
		case "updates-per-work":
			p.UpdatesPerWork, err = strconv.Atoi(v)
		case "delete":
			p.Delete, err = strconv.ParseBool(v)
		case "resync-reconnects":
			p.ResyncReconnects, err = strconv.ParseBool(v)
		case "churn":
			p.Churn, err = strconv.ParseFloat(v, 64)
		case "churn-for":
			p.ChurnFor, err = time.ParseDuration(v)
		case "workload-sha256":
			// What the files held: recorded, not a parameter.
		case "clusters":
			p.Clusters, err = strconv.Atoi(v)
		case "cluster-prefix":
			p.ClusterPrefix = v
		case "works-per-cluster":
			p.WorksPerCluster, err = strconv.Atoi(v)
		case "source-id":
			p.SourceID = v
		case "rate":
			p.Rate, err = strconv.ParseFloat(v, 64)
		case "order":
			p.Order, err = ParseOrder(v)
		case "creators":
			p.Creators, err = strconv.Atoi(v)
		case "status":
			p.Status, err = ParseStatusShape(v)
		case "status-updates":
			p.StatusUpdates, err = strconv.Atoi(v)
		case "apply-delay":
			p.ApplyDelay, err = ParseDelay(v)
		case "available-delay":
			p.AvailableDelay, err = ParseDelay(v)
		case "subscribe-batch":
			p.SubscribeBatch, err = strconv.Atoi(v)
		case "subscribe-gap":
			p.SubscribeGap, err = time.ParseDuration(v)
		case "subscribe-pause":
			p.SubscribePause, err = time.ParseDuration(v)
		case "create-after":
			p.CreateAfter, err = time.ParseDuration(v)
		case "seed":
			p.Seed, err = strconv.ParseInt(v, 10, 64)
		case "start-time":
			p.StartTime, err = time.Parse(time.RFC3339Nano, v)
		case "segment-size":
			p.SegmentSize, err = strconv.ParseInt(v, 10, 64)
		case "level":
			p.Level, err = strconv.Atoi(v)
		default:
			err = errors.New("unknown parameter")
		}
		if err != nil {
			return Params{}, fmt.Errorf("%w: %s=%q: %v", ErrParams, k, v, err)
		}
	}
	return p, p.Validate()
}
