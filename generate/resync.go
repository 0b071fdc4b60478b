package generate

import (
	"fmt"
	"math"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// The SDK client's first reconnect wait after it loses its stream:
// uniform in [5s, 10s] (sdk-go baseclient backoff, 5s with jitter 1.0;
// PROTOCOL.md §10).
const (
	reconnectMin = 5 * time.Second
	reconnectMax = 10 * time.Second
	// resyncAfter is how long after re-subscribing an agent sends its
	// spec resync request (it waits for its local store first).
	resyncAfter = time.Millisecond
)

// reconnects emits a fleet restart at start: every agent subscribes again
// after the SDK's jittered first backoff and then sends the spec resync
// request the SDK agent sends after every subscribe, listing the versions
// of the works it holds, so that Maestro's resync path is loaded as a
// Maestro restart loads it. It returns when the last request is sent.
func (g *generator) reconnects(start time.Duration, emit func() error) (time.Duration, error) {
	// The statuses of the phases before are all due before start.
	if err := g.statusesUntil(math.MaxInt64, emit, nil); err != nil {
		return 0, err
	}
	type reconnect struct {
		cluster int
		at      time.Duration
		id      [16]byte
	}
	all := make([]reconnect, len(g.clusters))
	for c := range g.clusters {
		r := g.workRand(1<<61 | uint64(c))
		at := start + reconnectMin + time.Duration(r.Int64N(int64(reconnectMax-reconnectMin)+1))
		all[c] = reconnect{cluster: c, at: at, id: newUUID(r)}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].at != all[j].at {
			return all[i].at < all[j].at
		}
		return all[i].cluster < all[j].cluster
	})
	// What each agent holds: its works as the rounds left them.
	held := make([][]maestro.ResourceVersion, len(g.clusters))
	if !g.p.Delete {
		for _, work := range g.order {
			c, i := g.ref(work)
			entry := g.mix.pick(g.p.Seed, work)
			g.name = g.mix.appendWorkName(g.name[:0], entry, g.names[c], i)
			held[c] = append(held[c], maestro.ResourceVersion{
				ResourceID:      string(g.rids.appendID(nil, g.p.SourceID, g.names[c], g.name)),
				ResourceVersion: int64(traceResourceVersion + g.p.UpdatesPerWork),
			})
		}
	}
	// Subscribes and requests in offset order: each request 1 ms after
	// its subscribe, with other agents' subscribes in between.
	type event struct {
		at      time.Duration
		resync  bool
		pending int // index in all
	}
	events := make([]event, 0, 2*len(all))
	for i, rc := range all {
		events = append(events, event{at: rc.at, pending: i}, event{at: rc.at + resyncAfter, resync: true, pending: i})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at < events[j].at })
	var last time.Duration
	for _, e := range events {
		rc := all[e.pending]
		cluster := g.clusters[rc.cluster]
		var err error
		if !e.resync {
			if g.buf, err = (proto.MarshalOptions{}).MarshalAppend(g.buf[:0], maestro.AgentSubscription(cluster)); err != nil {
				return 0, fmt.Errorf("generate: marshal subscription of %s: %w", cluster, err)
			}
			g.rec = format.Record{Type: format.TypeEvent, Offset: e.at, Flow: format.FlowAgentSubscribe, Actor: cluster, Data: g.buf}
		} else {
			ev, err := maestro.NewSpecResyncRequest(cluster, held[rc.cluster],
				maestro.EventOptions{ID: string(appendUUID(nil, rc.id)), Time: g.at(e.at)})
			if err != nil {
				return 0, err
			}
			if g.buf, err = maestro.Marshal(ev); err != nil {
				return 0, err
			}
			g.rec = format.Record{Type: format.TypeEvent, Offset: e.at, Flow: format.FlowAgentToServer, Actor: cluster,
				EventType: maestro.TypeSpecResyncRequest, Data: g.buf}
		}
		if err := emit(); err != nil {
			return 0, err
		}
		last = e.at
	}
	return last, nil
}
