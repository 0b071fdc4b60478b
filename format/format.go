// Package format reads and writes cereplay traces: a folder holding a
// manifest.json and numbered zstd segments of length-prefixed records.
//
// FORMAT.md beside this file is the specification; the constants below are
// the ones it names. A Writer appends records in offset order and writes the
// manifest last, so a folder without manifest.json is an unfinished trace.
// A Reader streams the records back with memory bounded by a few segments,
// whatever the size of the trace. Verify checks every byte.
package format

import (
	"fmt"
	"time"
)

// FormatVersion is the version written in manifest.json and in every
// segment header. Readers refuse any other version with ErrVersion.
const FormatVersion = 1

// segmentMagic opens the decompressed stream of every segment ("CRPS":
// CeReplay Segment), so a stray zstd file is not mistaken for a segment.
const segmentMagic = "CRPS"

// segmentHeaderSize is magic <4> + version <1>.
const segmentHeaderSize = len(segmentMagic) + 1

// ManifestName is the file a finished trace has; it is written last.
const ManifestName = "manifest.json"

// SegmentExt ends every segment file name: 00000001.seg.zst, 00000002.seg.zst ...
const SegmentExt = ".seg.zst"

// SegmentName returns the file name of segment n (1-based).
func SegmentName(n int) string { return fmt.Sprintf("%08d%s", n, SegmentExt) }

// Size limits. They bound what a reader allocates for a damaged or hostile
// file; a Writer refuses records beyond them.
const (
	// MaxRecordSize bounds the body of one record.
	MaxRecordSize = 64 << 20
	// MaxSegmentSize bounds the decompressed size of one segment.
	MaxSegmentSize = 1 << 30
	// DefaultSegmentSize is the raw (decompressed) size at which the
	// Writer starts a new segment. See FORMAT.md "Choosing the segment size".
	DefaultSegmentSize = 4 << 20
	// MaxManifestSize bounds manifest.json, checked before it is read:
	// decoding JSON takes several times its size in memory. It holds about
	// 900,000 consumer names of the longest kind (63 characters) or
	// 200,000 segments.
	MaxManifestSize = 64 << 20
)

// Flow says which way a record's message travels.
type Flow uint8

// Flows. The numbers are stored on disk: never renumber.
const (
	FlowSourceToServer  Flow = 1 // a source publishes to Maestro's source port
	FlowAgentToServer   Flow = 2 // an agent publishes to Maestro's broker port
	FlowServerToAgent   Flow = 3 // Maestro delivers to an agent's Subscribe stream
	FlowServerToSource  Flow = 4 // Maestro delivers to a source's Subscribe stream
	FlowAgentSubscribe  Flow = 5 // an agent opens its Subscribe stream
	FlowSourceSubscribe Flow = 6 // a source opens its Subscribe stream
)

var flowNames = [...]string{
	FlowSourceToServer:  "source>server",
	FlowAgentToServer:   "agent>server",
	FlowServerToAgent:   "server>agent",
	FlowServerToSource:  "server>source",
	FlowAgentSubscribe:  "agent-subscribe",
	FlowSourceSubscribe: "source-subscribe",
}

// Valid reports whether f is one of the defined flows.
func (f Flow) Valid() bool { return f >= FlowSourceToServer && f <= FlowSourceSubscribe }

// String returns the flow's name as used in manifests and on the command line.
func (f Flow) String() string {
	if f.Valid() {
		return flowNames[f]
	}
	return fmt.Sprintf("flow(%d)", uint8(f))
}

// Agent reports whether the flow's actor is a cluster (agent side).
func (f Flow) Agent() bool {
	return f == FlowAgentToServer || f == FlowServerToAgent || f == FlowAgentSubscribe
}

// Source reports whether the flow's actor is a source id.
func (f Flow) Source() bool {
	return f == FlowSourceToServer || f == FlowServerToSource || f == FlowSourceSubscribe
}

// Subscribe reports whether the record's data is a SubscriptionRequest
// rather than a CloudEvent.
func (f Flow) Subscribe() bool { return f == FlowAgentSubscribe || f == FlowSourceSubscribe }

// ParseFlow parses a flow name as printed by Flow.String.
func ParseFlow(s string) (Flow, error) {
	for f := FlowSourceToServer; f <= FlowSourceSubscribe; f++ {
		if flowNames[f] == s {
			return f, nil
		}
	}
	return 0, fmt.Errorf("format: unknown flow %q (want one of source>server, agent>server, server>agent, server>source, agent-subscribe, source-subscribe)", s)
}

// RecordType numbers the kinds of record. The numbers are stored on disk.
type RecordType uint8

const (
	// TypeEvent is a traffic record: one message on the wire.
	TypeEvent RecordType = 1
	// TypeOutcome is a replay result for one record of a trace.
	TypeOutcome RecordType = 2
)

// String returns "event" or "outcome".
func (t RecordType) String() string {
	switch t {
	case TypeEvent:
		return "event"
	case TypeOutcome:
		return "outcome"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Record is one entry of a trace.
type Record struct {
	Type       RecordType
	Offset     time.Duration // from trace start; non-decreasing within a trace
	Flow       Flow
	Actor      string // cluster name (agent flows) or source id (source flows)
	ResourceID string
	EventType  string // CloudEvent type; "" for subscribe records
	HasTrigger bool
	Trigger    uint64        // index (0-based position in the trace) of the record this one answers
	Delay      time.Duration // recorded delay after the trigger arrived
	Data       []byte        // exact wire bytes: marshalled pbv1.CloudEvent, or pbv1.SubscriptionRequest for subscribe flows
	Outcome    Outcome       // only for TypeOutcome
}

// OutcomeStatus is how a replayed record ended. The numbers are stored on disk.
type OutcomeStatus uint8

const (
	OutcomeSent        OutcomeStatus = 1 // published, the server accepted it
	OutcomeFailed      OutcomeStatus = 2 // published, the server or the connection refused it (Code)
	OutcomeDroppedLate OutcomeStatus = 3 // not sent: later than the allowed lateness
	OutcomeSkipped     OutcomeStatus = 4 // not sent: outside this shard or filter
	OutcomeDelivered   OutcomeStatus = 5 // an expected delivery arrived (Delivery)
	OutcomeMissing     OutcomeStatus = 6 // an expected delivery never arrived
	// OutcomeNotTriggered: not sent because the record it answers (its
	// trigger: a spec that failed, was not sent or never arrived) did
	// not happen.
	OutcomeNotTriggered OutcomeStatus = 7
	// OutcomeNotSent: not sent because the run ended first (interrupted,
	// or stopped for a reason its summary gives).
	OutcomeNotSent OutcomeStatus = 8
)

var outcomeNames = [...]string{
	OutcomeSent:         "sent",
	OutcomeFailed:       "failed",
	OutcomeDroppedLate:  "dropped-late",
	OutcomeSkipped:      "skipped",
	OutcomeDelivered:    "delivered",
	OutcomeMissing:      "missing",
	OutcomeNotTriggered: "not-triggered",
	OutcomeNotSent:      "not-sent",
}

// Valid reports whether s is one of the defined statuses.
func (s OutcomeStatus) Valid() bool { return s >= OutcomeSent && s <= OutcomeNotSent }

// String returns the status name ("sent", "dropped-late", ...).
func (s OutcomeStatus) String() string {
	if s.Valid() {
		return outcomeNames[s]
	}
	return fmt.Sprintf("outcome(%d)", uint8(s))
}

// ParseOutcomeStatus parses a name printed by OutcomeStatus.String.
func ParseOutcomeStatus(s string) (OutcomeStatus, error) {
	for o := OutcomeSent; o <= OutcomeNotSent; o++ {
		if outcomeNames[o] == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("format: unknown outcome status %q", s)
}

// Outcome is the replay result carried by a TypeOutcome record.
type Outcome struct {
	Index    uint64 // position of the trace record this outcome is for
	Status   OutcomeStatus
	Code     uint32        // gRPC status code when Status is OutcomeFailed
	Lateness time.Duration // how late the send started against its schedule
	Latency  time.Duration // publish call duration
	Delivery time.Duration // from send to arrival at the receiver
	Note     string
}
