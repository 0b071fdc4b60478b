package replay

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/maestro"
)

// agent plays one cluster's work agent: one Subscribe stream on the broker
// port, drained continuously, and the status replies it publishes.
type agent struct {
	r       *runner
	cluster string
	addr    string // broker address
	cc      *grpc.ClientConn
	subReq  []byte // SubscriptionRequest bytes

	started atomic.Bool
	mu      sync.Mutex
	// versions holds the resource version last received for each resource,
	// for the spec resync request sent after a reconnect, as the SDK agent
	// does.
	versions map[string]int64
}

// connect opens the agent's stream once and then keeps it open in the
// background, reconnecting with backoff when it drops. It returns the
// result of the first attempt; a failed first attempt is retried too.
func (a *agent) connect(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return nil
	}
	st, err := subscribe(ctx, a.cc, a.subReq)
	if err != nil {
		a.r.countError(err)
	} else {
		a.r.m.agents.Inc()
	}
	a.r.wg.Add(1)
	go func() {
		defer a.r.wg.Done()
		a.loop(ctx, st)
	}()
	return err
}

// loop drains the stream; when it breaks it re-subscribes with backoff and
// asks for a spec resync, until ctx ends.
func (a *agent) loop(ctx context.Context, st grpc.ClientStream) {
	for {
		if st != nil {
			err := a.r.drain(st, a.handle)
			a.r.m.agents.Dec()
			if ctx.Err() != nil {
				return
			}
			a.r.countError(err)
			a.r.notef("agent %s: stream lost (%v), reconnecting", a.cluster, status.Convert(err).Message())
		}
		down := time.Now()
		st = a.r.resubscribe(ctx, a.cc, a.subReq)
		if st == nil {
			return // ctx ended
		}
		a.r.m.agents.Inc()
		a.r.outage(time.Since(down))
		a.resync(ctx)
	}
}

// drain reads a Subscribe stream until it fails, timestamping every
// message and handing it to handle, which must keep nothing of the bytes
// (they are received into one reused buffer).
func (r *runner) drain(st grpc.ClientStream, handle func(b []byte, at time.Time)) error {
	var m rawMsg
	for {
		if err := st.RecvMsg(&m); err != nil {
			return err
		}
		handle(m.b, r.clock.Now())
	}
}

// handle processes one message received on the agent's stream: heartbeats
// are counted, spec events matched to the specs the replay sent; nothing
// else is decoded.
func (a *agent) handle(b []byte, at time.Time) {
	k, err := maestro.ExtractKeys(b)
	switch {
	case err != nil:
		a.r.m.received.WithLabelValues("agent", "undecodable").Inc()
		a.r.undecodable.Add(1)
	case k.Type == maestro.TypeHeartbeat:
		a.r.m.received.WithLabelValues("agent", "heartbeat").Inc()
		a.r.heartbeats.Add(1)
	case strings.Contains(k.Type, ".spec."):
		a.r.m.received.WithLabelValues("agent", "spec").Inc()
		if k.HasResourceVersion {
			a.mu.Lock()
			a.versions[k.ResourceID] = k.ResourceVersion
			a.mu.Unlock()
		}
		if d, ok := a.r.tr.delivered(k, at); ok {
			a.r.specDelivery.Record(d)
			a.r.m.latency.WithLabelValues("delivery").Observe(d.Seconds())
		}
	default:
		a.r.m.received.WithLabelValues("agent", "other").Inc()
	}
}

// resync publishes a spec resync request listing the versions the agent
// holds, so the server resends what changed while the stream was down.
func (a *agent) resync(ctx context.Context) {
	a.mu.Lock()
	versions := make([]maestro.ResourceVersion, 0, len(a.versions))
	for id, v := range a.versions {
		versions = append(versions, maestro.ResourceVersion{ResourceID: id, ResourceVersion: v})
	}
	a.mu.Unlock()
	sort.Slice(versions, func(i, j int) bool { return versions[i].ResourceID < versions[j].ResourceID })
	ev, err := maestro.NewSpecResyncRequest(a.cluster, versions, maestro.EventOptions{})
	var ce []byte
	if err == nil {
		ce, err = maestro.Marshal(ev)
	}
	if err != nil {
		a.r.notef("agent %s: resync request: %v", a.cluster, err)
		return
	}
	_, code, msg := a.r.call(ctx, a.cc, a.addr, ce, time.Now())
	if code != 0 {
		a.r.notef("agent %s: resync request failed: %s", a.cluster, msg)
		return
	}
	a.r.resyncs.Add(1)
}

// resubscribe retries Subscribe with jittered exponential backoff (each
// wait uniform in [d, 2d), as the SDK client does) until it succeeds or ctx
// ends (then it returns nil).
func (r *runner) resubscribe(ctx context.Context, cc *grpc.ClientConn, req []byte) grpc.ClientStream {
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
		d *= 2
		if d > r.cfg.ReconnectMax {
			d = r.cfg.ReconnectMax
		}
	}
}
