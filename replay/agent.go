package replay

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/maestro"
)

// agent plays one cluster's work agent: one Subscribe stream on the broker
// port, drained continuously, and the status replies it publishes.
type agent struct {
	r       *runner
	cluster string
	addr    string // broker address
	cc      rpcClient
	subReq  []byte // SubscriptionRequest bytes

	started atomic.Bool
	mu      sync.Mutex
	// versions holds the resource version last received for each resource,
	// for the spec resync request sent after a reconnect, as the SDK agent
	// does.
	versions map[string]int64
	// restart asks the stream to reconnect at once (a subscribe record of
	// an agent already subscribed: the trace's reconnect).
	restart restarter
	// up receives (capacity 1) each time the agent's stream subscribes,
	// so a trace's reconnect is played only once the stream is back.
	up chan struct{}
}

// connect opens the agent's stream once and then keeps it open in the
// background (keepSubscribed). It returns the result of the first
// attempt; a failed first attempt is retried too.
func (a *agent) connect(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return nil
	}
	return a.r.keepSubscribed(ctx, subscription{
		who: "agent " + a.cluster, addr: a.addr, cc: a.cc, req: a.subReq, handle: a.handle,
		up: a.isUp, down: a.r.m.agents.Dec, resumed: a.resync, restart: &a.restart,
	})
}

// handle processes one message received on the agent's stream: heartbeats
// are counted, spec events matched to the specs the replay sent; nothing
// else is decoded.
func (a *agent) handle(b []byte, at time.Time) {
	k, ok := a.r.heard("agent", b)
	switch {
	case !ok:
	case maestro.IsSpec(k.Type):
		a.r.received("agent", "spec")
		switch {
		case k.Deleting:
			// The agent deletes the work and forgets it: a later resync
			// request no longer lists it.
			a.mu.Lock()
			delete(a.versions, k.ResourceID)
			a.mu.Unlock()
		case k.HasResourceVersion:
			a.mu.Lock()
			a.versions[k.ResourceID] = k.ResourceVersion
			a.mu.Unlock()
		}
		if d, ok := a.r.tr.delivered(k, at); ok {
			a.r.delivered(d)
		}
	default:
		a.r.received("agent", "other")
	}
}

// resyncRequest builds the spec resync request of the agent: the SDK
// agent's, listing the version of every resource it received.
func (a *agent) resyncRequest() ([]byte, error) {
	a.mu.Lock()
	versions := make([]maestro.ResourceVersion, 0, len(a.versions))
	for id, v := range a.versions {
		versions = append(versions, maestro.ResourceVersion{ResourceID: id, ResourceVersion: v})
	}
	a.mu.Unlock()
	sort.Slice(versions, func(i, j int) bool { return versions[i].ResourceID < versions[j].ResourceID })
	ev, err := maestro.NewSpecResyncRequest(a.cluster, versions, maestro.EventOptions{})
	if err != nil {
		return nil, err
	}
	return maestro.Marshal(ev)
}

// isUp counts the agent's stream as connected and says it is up.
func (a *agent) isUp() {
	a.r.m.agents.Inc()
	select {
	case a.up <- struct{}{}:
	default:
	}
}

// reconnect asks the agent's stream to subscribe again at once and waits
// until it has (or ctx ends), so the reconnect has happened when the run
// accounts for it, and a resync request the trace sends next finds the
// stream it answers on.
func (a *agent) reconnect(ctx context.Context) error {
	select {
	case <-a.up: // an earlier subscribe's
	default:
	}
	a.restart.restart()
	select {
	case <-a.up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resync publishes a spec resync request listing the versions the agent
// holds, so the server resends what changed while the stream was down.
func (a *agent) resync(ctx context.Context) {
	ce, err := a.resyncRequest()
	if err != nil {
		a.r.notef("agent %s: resync request: %v", a.cluster, err)
		return
	}
	var c caller
	defer c.release()
	_, code, msg := a.r.call(&c, ctx, a.cc, a.addr, ce, time.Now())
	if code != 0 {
		a.r.notef("agent %s: resync request failed: %s", a.cluster, msg)
		return
	}
	a.r.resynced()
}
