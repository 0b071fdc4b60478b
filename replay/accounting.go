package replay

import (
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/maestro"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
)

// accounting is what a run counts and measures. Each count and latency
// goes through one method to both the live Prometheus metrics and the
// summary's counter or histogram, so the two cannot disagree; the parts
// that count (the send path, agents, sources, streams) call its methods
// rather than change its fields.
type accounting struct {
	m *metrics
	// The latency histogram of each kind, looked up once: a lookup by
	// label hashes the label at every message.
	publishObs, deliveryObs, forwardObs prometheus.Observer

	publishLat    latencySet
	specDelivery  *Latency
	statusForward *Latency
	sendLate      *Latency
	replyLate     *Latency

	specsSent, statusesSent atomic.Int64
	reconnects, resyncs     atomic.Int64
	heartbeats, undecodable atomic.Int64
	outageNanos             atomic.Int64
	lastSend                atomic.Int64 // unix nanos of the last send, on the run's clock
	lateSends               atomic.Int64 // paced sends later than LateWarn
}

func newAccounting() *accounting {
	m := newMetrics()
	return &accounting{m: m, specDelivery: NewLatency(), statusForward: NewLatency(),
		sendLate: NewLatency(), replyLate: NewLatency(),
		publishObs:  m.latency.WithLabelValues("publish"),
		deliveryObs: m.latency.WithLabelValues("delivery"),
		forwardObs:  m.latency.WithLabelValues("forward")}
}

// received counts a message of kind received on a stream of side
// ("agent" or "source").
func (a *accounting) received(side, kind string) {
	a.m.received.WithLabelValues(side, kind).Inc()
	switch kind {
	case "undecodable":
		a.undecodable.Add(1)
	case "heartbeat":
		a.heartbeats.Add(1)
	}
}

// heard decodes the keys of a message received on a stream of side and
// reports whether the stream has more to do with it: an undecodable
// message and a heartbeat are only counted, here.
func (a *accounting) heard(side string, b []byte) (maestro.Keys, bool) {
	k, err := maestro.ExtractKeys(b)
	switch {
	case err != nil:
		a.received(side, "undecodable")
		return k, false
	case k.Type == maestro.TypeHeartbeat:
		a.received(side, "heartbeat")
		return k, false
	}
	return k, true
}

// delivered records a spec's delivery latency.
func (a *accounting) delivered(d time.Duration) {
	a.specDelivery.Record(d)
	a.deliveryObs.Observe(d.Seconds())
}

// forwarded records a status's forward latency.
func (a *accounting) forwarded(d time.Duration) {
	a.statusForward.Record(d)
	a.forwardObs.Observe(d.Seconds())
}

// published records a Publish call to addr that took lat and ended at
// (on the run's clock) with err.
func (a *accounting) published(addr string, lat time.Duration, at time.Time, err error) {
	a.lastSend.Store(at.UnixNano())
	a.publishLat.get(addr).Record(lat)
	a.publishObs.Observe(lat.Seconds())
	a.countError(err)
}

// reconnected counts a stream subscribed again after it broke.
func (a *accounting) reconnected() {
	a.m.reconnects.Inc()
	a.reconnects.Add(1)
}

// resynced counts a spec resync request sent.
func (a *accounting) resynced() { a.resyncs.Add(1) }

// lateness records how late a send was released: a status reply's in the
// replies' histogram, a paced send's in the schedule's (counted late past
// warn). An unpaced send has no schedule to be late for.
func (a *accounting) lateness(late time.Duration, reply, paced bool, warn time.Duration) {
	if reply {
		a.replyLate.Record(late)
		return
	}
	if !paced {
		return
	}
	a.sendLate.Record(late)
	a.m.lateness.Observe(late.Seconds())
	if late > warn {
		a.lateSends.Add(1)
		a.m.late.Inc()
	}
}

// countError counts a failed gRPC call by its code.
func (a *accounting) countError(err error) {
	if err == nil {
		return
	}
	a.m.errors.WithLabelValues(status.Code(err).String()).Inc()
}

// outage adds the time a stream was down.
func (a *accounting) outage(d time.Duration) { a.outageNanos.Add(int64(d)) }
