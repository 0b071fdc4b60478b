package replay

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/transport"
)

// subscription is one Subscribe stream the replay keeps open for an agent
// or a source: drained into handle, subscribed again with backoff when it
// drops. The hooks may be nil.
type subscription struct {
	who    string // names the stream in notes: "agent cluster1"
	addr   string // the address it subscribes to
	cc     *grpc.ClientConn
	req    []byte // SubscriptionRequest bytes
	handle func(b []byte, at time.Time)
	// up and down say when the stream opens and when it is lost (agents
	// count their connected streams).
	up, down func()
	// resumed runs after each re-subscribe (an agent asks for a spec
	// resync, as the SDK agent does).
	resumed func(context.Context)
}

// keepSubscribed subscribes once and keeps the stream open in the
// background until ctx ends. It returns the first attempt's error; a
// failed first attempt is retried too.
func (r *runner) keepSubscribed(ctx context.Context, s subscription) error {
	h := r.newStreamHealth(s.who, s.addr)
	st, err := subscribe(ctx, s.cc, s.req)
	if err != nil {
		r.countError(err)
		h.setDown(err)
	} else {
		h.setUp()
		callHook(s.up)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.keepLoop(ctx, s, h, st)
	}()
	return err
}

// keepLoop drains the stream; when it breaks it re-subscribes with
// backoff, counts the outage and calls resumed, until ctx ends.
func (r *runner) keepLoop(ctx context.Context, s subscription, h *streamHealth, st grpc.ClientStream) {
	for {
		if st != nil {
			err := r.drain(st, s.handle)
			callHook(s.down)
			if ctx.Err() != nil {
				return
			}
			h.setDown(err)
			r.countError(err)
			r.notef("%s: stream lost (%v), reconnecting", s.who, status.Convert(err).Message())
		}
		down := time.Now()
		st = r.resubscribe(ctx, s.cc, s.req, h)
		if st == nil {
			return // ctx ended
		}
		h.setUp()
		callHook(s.up)
		r.outage(time.Since(down))
		if s.resumed != nil {
			s.resumed(ctx)
		}
	}
}

// callHook calls f unless it is nil.
func callHook(f func()) {
	if f != nil {
		f()
	}
}

// drain reads a Subscribe stream until it fails, timestamping every
// message and handing it to handle, which must keep nothing of the bytes
// (they are received into one reused buffer).
func (r *runner) drain(st grpc.ClientStream, handle func(b []byte, at time.Time)) error {
	var m transport.RawMsg
	for {
		if err := st.RecvMsg(&m); err != nil {
			return err
		}
		handle(m.B, r.clock.Now())
	}
}

// resubscribe retries Subscribe with jittered exponential backoff (each
// wait uniform in [d, 2d), as the SDK client does) until it succeeds or ctx
// ends (then it returns nil).
func (r *runner) resubscribe(ctx context.Context, cc *grpc.ClientConn, req []byte, h *streamHealth) grpc.ClientStream {
	d := r.cfg.ReconnectMin
	for {
		wait := d + time.Duration(rand.Int64N(int64(d)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		st, err := subscribe(ctx, cc, req)
		if err == nil {
			r.m.reconnects.Inc()
			r.reconnects.Add(1)
			return st
		}
		if ctx.Err() != nil {
			return nil
		}
		r.countError(err)
		h.setDown(err)
		d *= 2
		if d > r.cfg.ReconnectMax {
			d = r.cfg.ReconnectMax
		}
	}
}
