package replay

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/cereplay/cereplay/maestro"
)

// source plays one source client on one source address: it publishes spec
// events and drains its Subscribe stream of forwarded statuses.
type source struct {
	r      *runner
	id     string
	addr   string
	cc     *grpc.ClientConn
	subReq []byte

	started atomic.Bool
}

// connect subscribes once and keeps the stream open in the background,
// like agent.connect.
func (s *source) connect(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return nil
	}
	return s.r.keepSubscribed(ctx, subscription{
		who: "source " + s.id + " at " + s.addr, addr: s.addr, cc: s.cc, req: s.subReq, handle: s.handle,
	})
}

// handle processes one message received on the source's stream: forwarded
// statuses are matched by the sequence id the replay gave them.
func (s *source) handle(b []byte, at time.Time) {
	k, err := maestro.ExtractKeys(b)
	switch {
	case err != nil:
		s.r.m.received.WithLabelValues("source", "undecodable").Inc()
		s.r.undecodable.Add(1)
	case k.Type == maestro.TypeHeartbeat:
		s.r.m.received.WithLabelValues("source", "heartbeat").Inc()
		s.r.heartbeats.Add(1)
	case maestro.IsStatus(k.Type):
		s.r.m.received.WithLabelValues("source", "status").Inc()
		if d, ok := s.r.tr.forwarded(k, at); ok {
			s.r.statusForward.Record(d)
			s.r.m.latency.WithLabelValues("forward").Observe(d.Seconds())
		}
	default:
		s.r.m.received.WithLabelValues("source", "other").Inc()
	}
}
