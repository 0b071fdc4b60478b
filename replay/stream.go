package replay

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// subscription is one Subscribe stream the replay keeps open for an agent
// or a source: drained into handle, subscribed again with backoff when it
// drops. The hooks may be nil.
type subscription struct {
	who    string // names the stream in notes: "agent cluster1"
	addr   string // the address it subscribes to
	cc     rpcClient
	req    []byte // SubscriptionRequest bytes
	handle func(b []byte, at time.Time)
	// deliver timestamps a message and hands it to handle (made once by
	// keepSubscribed).
	deliver func(b []byte)
	// up and down say when the stream opens and when it is lost (agents
	// count their connected streams).
	up, down func()
	// resumed runs after each re-subscribe (an agent asks for a spec
	// resync, as the SDK agent does).
	resumed func(context.Context)
	// restart, when set, closes the stream and subscribes again at once,
	// without resumed: a reconnect the trace holds, whose resync request
	// is a record of its own.
	restart *restarter
}

// keepSubscribed subscribes once and keeps the stream open in the
// background until ctx ends. It returns the first attempt's error; a
// failed first attempt is retried too.
func (r *runner) keepSubscribed(ctx context.Context, s subscription) error {
	h := r.newStreamHealth(s.who, s.addr)
	handle := s.handle
	s.deliver = func(b []byte) { handle(b, r.clock.Now()) }
	sctx, cancel := streamContext(ctx)
	st, err := s.subscribe(sctx)
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
		r.keepLoop(ctx, s, h, st, cancel)
	}()
	return err
}

// keepLoop drains the stream; when it breaks it re-subscribes with
// backoff, counts the outage and calls resumed, until ctx ends.
func (r *runner) keepLoop(ctx context.Context, s subscription, h *streamHealth, st rpcStream, cancel context.CancelFunc) {
	defer func() { cancel() }() // the stream of the moment
	for {
		restarted := false
		if st != nil {
			var err error
			restarted, err = r.drainUntilRestart(st, s, cancel)
			callHook(s.down)
			if ctx.Err() != nil {
				return
			}
			if !restarted {
				h.setDown(err)
				r.countError(err)
				r.notef("%s: stream lost (%v), reconnecting", s.who, status.Convert(err).Message())
			}
		}
		down := time.Now()
		cancel()
		var sctx context.Context
		sctx, cancel = streamContext(ctx)
		if restarted {
			if nst, err := s.subscribe(sctx); err == nil {
				st = nst
				r.reconnected()
				callHook(s.up)
				r.outage(time.Since(down))
				continue
			}
		}
		st = r.resubscribe(sctx, s, h)
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

// subscribe opens the stream once.
func (s subscription) subscribe(ctx context.Context) (rpcStream, error) {
	if s.cc == nil {
		return nil, status.Error(codes.Unavailable, "no connection (the address could not be dialed)")
	}
	return s.cc.subscribe(ctx, s.req, s.deliver)
}

// streamContext is the context of one stream: cancelled when the stream is
// replaced or the loop keeping it ends (keepLoop cancels the last one).
func streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

// drainUntilRestart drains st until it fails or s.restart asks for a new
// stream (then cancel ends this one), and reports which.
func (r *runner) drainUntilRestart(st rpcStream, s subscription, cancel context.CancelFunc) (bool, error) {
	if s.restart == nil {
		return false, st.wait()
	}
	s.restart.attach(cancel)
	err := st.wait()
	return s.restart.detach(), err
}

// restarter cuts an agent's stream short when the trace reconnects the
// agent (agent.reconnect): it holds the cancel of the stream being
// drained, and a restart asked for between two streams applies to the
// next one. A goroutine per stream waiting for the request did the same,
// at a goroutine per agent for the whole run. The zero restarter is
// ready.
type restarter struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // the stream being drained; nil between streams
	pending bool               // a restart asked for between streams
	fired   bool               // the stream being drained was restarted
}

// attach starts the drain of a stream that cancel ends; a pending restart
// ends it at once.
func (x *restarter) attach(cancel context.CancelFunc) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cancel, x.fired = cancel, false
	if x.pending {
		x.pending = false
		x.fire()
	}
}

// detach ends a drain and reports whether a restart ended it.
func (x *restarter) detach() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cancel = nil
	fired := x.fired
	x.fired = false
	return fired
}

// restart ends the stream being drained, or else the next one.
func (x *restarter) restart() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cancel == nil {
		x.pending = true
		return
	}
	x.fire()
}

// fire cancels the stream being drained. Call with x.mu held.
func (x *restarter) fire() {
	x.cancel()
	x.cancel, x.fired = nil, true
}

// callHook calls f unless it is nil.
func callHook(f func()) {
	if f != nil {
		f()
	}
}

// resubscribe retries Subscribe with jittered exponential backoff (each
// wait uniform in [d, 2d), as the SDK client does) until it succeeds or ctx
// ends (then it returns nil).
func (r *runner) resubscribe(ctx context.Context, s subscription, h *streamHealth) rpcStream {
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
		st, err := s.subscribe(ctx)
		if err == nil {
			r.reconnected()
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
