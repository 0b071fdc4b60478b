package replay

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/maestro"
)

// source plays one source client on one source address: it publishes spec
// events and drains its Subscribe stream of forwarded statuses.
type source struct {
	r      *runner
	id     string
	addr   string
	cc     rpcClient
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
	k, ok := s.r.heard("source", b)
	switch {
	case !ok:
	case maestro.IsStatus(k.Type):
		s.r.received("source", "status")
		if d, ok := s.r.tr.forwarded(k, at); ok {
			s.r.forwarded(d)
		}
	default:
		s.r.received("source", "other")
	}
}
