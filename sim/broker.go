package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/server"
	sdkgrpc "open-cluster-management.io/sdk-go/pkg/cloudevents/server/grpc"

	"github.com/cereplay/cereplay/maestro"
)

// brokerServer is the agent-facing port (:8091): the SDK's GRPCBroker,
// which Maestro wraps the same way, plus sim's publish latency, metrics,
// a guard against events the SDK would crash on, and the redelivery of
// spec events that found no subscriber.
//
// Agents are spread by cluster name over several SDK brokers (brokerShards).
// One broker, as in Maestro, scans every subscriber for every event it
// delivers; with 3,000 agents that scan was the largest cost of sim's
// spec path. A cluster's streams, its spec events and its resync requests
// always meet in the same shard, so what each agent sees is unchanged.
type brokerServer struct {
	pbv1.UnimplementedCloudEventServiceServer
	s *Server
}

// brokerShards is the number of SDK brokers agents are spread over.
const brokerShards = 64

// brokerFor returns the SDK broker that serves cluster.
func (s *Server) brokerFor(cluster string) *sdkgrpc.GRPCBroker {
	h := fnv.New32a()
	h.Write([]byte(cluster))
	return s.brokers[h.Sum32()%uint32(len(s.brokers))]
}

// agentSubscribed reports whether the SDK has registered a stream of
// cluster.
func (s *Server) agentSubscribed(cluster string) bool {
	return s.brokerFor(cluster).IsConsumerSubscribed(cluster)
}

// agentStreamCount is the number of agent streams registered in the SDK
// brokers.
func (s *Server) agentStreamCount() int {
	n := 0
	for _, b := range s.brokers {
		n += b.Subscribers().Len()
	}
	return n
}

func (b *brokerServer) Publish(ctx context.Context, req *pbv1.PublishRequest) (*emptypb.Empty, error) {
	if err := b.s.sleepLatency(ctx); err != nil {
		return nil, err
	}
	if req.GetEvent() == nil {
		return nil, status.Error(codes.InvalidArgument, "failed to convert protobuf to cloudevent: publish request has no event")
	}
	b.s.metrics.received.WithLabelValues(portBroker, maestro.ShortType(req.Event.GetType())).Inc()
	return b.s.brokerFor(maestro.StringAttr(req.Event, maestro.AttrClusterName)).Publish(ctx, req)
}

func (b *brokerServer) Subscribe(req *pbv1.SubscriptionRequest, stream pbv1.CloudEventService_SubscribeServer) error {
	if cluster := req.GetClusterName(); cluster != "" {
		sub := &agentSub{cluster: cluster}
		go b.s.redeliverWhenSubscribed(stream.Context(), sub)
		defer sub.close(b.s.agents)
	}
	b.s.metrics.subscribers.WithLabelValues(portBroker).Inc()
	defer b.s.metrics.subscribers.WithLabelValues(portBroker).Dec()
	return b.s.brokerFor(req.GetClusterName()).Subscribe(req, stream)
}

// agentSub is one agent stream as counted in agentStreams: counted once
// the SDK broker has registered it, uncounted when it ends, whichever
// order the two happen in.
type agentSub struct {
	cluster string
	mu      sync.Mutex
	counted bool
	closed  bool
}

// count adds the stream unless it has already ended.
func (a *agentSub) count(streams *agentStreams) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.counted = true
	streams.add(a.cluster)
	return true
}

func (a *agentSub) close(streams *agentStreams) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.counted {
		streams.remove(a.cluster)
	}
}

// agentStreams counts, per consumer, the agent streams the SDK broker has
// registered. The spec worker asks it instead of the broker's
// IsConsumerSubscribed, which scans every subscriber (3,000 in a scale
// run) under the broker's lock for each event.
type agentStreams struct {
	mu sync.Mutex
	n  map[string]int
}

func newAgentStreams() *agentStreams { return &agentStreams{n: make(map[string]int)} }

func (a *agentStreams) add(cluster string) {
	a.mu.Lock()
	a.n[cluster]++
	a.mu.Unlock()
}

func (a *agentStreams) remove(cluster string) {
	a.mu.Lock()
	if a.n[cluster]--; a.n[cluster] <= 0 {
		delete(a.n, cluster)
	}
	a.mu.Unlock()
}

func (a *agentStreams) has(cluster string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[cluster] > 0
}

// brokerService is the backend the SDK broker asks for a consumer's
// resources (spec resync) and hands agent status to.
type brokerService struct {
	s *Server
}

var _ server.Service = (*brokerService)(nil)

// List returns the spec events of every resource of the consumer,
// including those being deleted, as Maestro's List does for a resync.
func (b *brokerService) List(_ context.Context, opts types.ListOptions) ([]*cloudevents.Event, error) {
	rs := b.s.store.listByConsumer(opts.ClusterName)
	out := make([]*cloudevents.Event, 0, len(rs))
	for i := range rs {
		evt, err := rs[i].agentEvent(maestro.TypeSpecCreate, false)
		if err != nil {
			return nil, fmt.Errorf("encode resource %s: %w", rs[i].ID, err)
		}
		out = append(out, evt)
	}
	return out, nil
}

// RegisterHandler is called by the SDK broker with itself; sim calls the
// broker directly.
func (b *brokerService) RegisterHandler(context.Context, server.EventHandler) {}

// HandleStatusUpdate applies an agent's status with Maestro's rules
// (cmd/maestro/server/event_server.go handleStatusUpdate): unknown
// resources are ignored, the consumer must match, Deleted=True removes the
// resource, other status is stored only for the current version and a
// newer sequence id. An error becomes FailedPrecondition in the SDK broker.
func (b *brokerService) HandleStatusUpdate(_ context.Context, evt *cloudevents.Event) error {
	s := b.s
	req, err := decodeStatus(evt, s.checked)
	if err != nil {
		return fmt.Errorf("failed to decode cloudevent: %v", err)
	}
	found, ok := s.store.get(req.ResourceID)
	if !ok {
		s.metrics.statusIgnored.WithLabelValues(statusUnknownResource.String()).Inc()
		return nil
	}
	if found.Consumer != req.Consumer {
		return fmt.Errorf("unmatched consumer name %s for resource %s", req.Consumer, req.ResourceID)
	}
	if found.Spec != nil && found.Spec.hasMeta {
		// Maestro replaces the agent's metadata with the spec's, which
		// every forwarded event and REST view sets anew: no need to keep it.
		_ = req.Record.context.SetExtension(types.ExtensionWorkMeta, nil)
	}
	now := time.Now()
	if req.Deleted {
		if removed, ok := s.store.remove(req.ResourceID); ok {
			s.statusQueue.Push(statusItem{res: removed, status: req.Record, accepted: now})
		}
		return nil
	}
	stored, outcome, err := s.store.updateStatus(req.ResourceID, req.Version, req.Record)
	if err != nil {
		return fmt.Errorf("failed to update resource status %s: %v", req.ResourceID, err)
	}
	if outcome != statusStored {
		s.metrics.statusIgnored.WithLabelValues(outcome.String()).Inc()
		return nil
	}
	s.statusQueue.Push(statusItem{res: stored, status: req.Record, accepted: now})
	return nil
}

// specItem is a spec event to deliver: the resource is read from the store
// when delivered, so the agent gets its state at that moment, as from
// Maestro's spec controller.
type specItem struct {
	id        string
	eventType string
	accepted  time.Time
}

// specWorker hands spec events to the broker one at a time. The broker
// queues each on every stream of the consumer (100 slots each) and blocks
// while one is full, as in Maestro. Events for a consumer with no stream
// wait in pending until one subscribes.
func (s *Server) specWorker() {
	defer s.wg.Done()
	ctx := context.Background()
	for {
		item, ok := s.specQueue.Pop()
		if !ok {
			return
		}
		r, ok := s.store.get(item.id)
		if !ok {
			continue // removed meanwhile
		}
		if len(s.brokers) == 0 {
			continue // no broker port
		}
		if !s.agents.has(r.Consumer) {
			s.pending.add(r.Consumer, item)
			// A stream may have registered between the check and the add.
			if s.agents.has(r.Consumer) {
				s.redeliver(r.Consumer)
			}
			continue
		}
		evt, err := r.agentEvent(item.eventType, true)
		if err != nil {
			s.log.Error("encode spec for agent", "resource", r.ID, "err", err)
			continue
		}
		if err := s.brokerFor(r.Consumer).HandleEvent(ctx, evt); err != nil {
			s.log.Error("deliver spec to agent", "resource", r.ID, "err", err)
			continue
		}
		s.metrics.sent.WithLabelValues(portBroker, maestro.ShortType(item.eventType)).Inc()
		s.metrics.specDelivery.Observe(time.Since(item.accepted).Seconds())
	}
}

// redeliverWhenSubscribed waits until the broker has registered a stream
// of the consumer (the SDK registers it after sending the header), counts
// it in s.agents, then requeues the spec events that found no subscriber.
// Maestro retries such events with a backoff and delivers them 0.1-0.7 s
// after a late subscribe.
func (s *Server) redeliverWhenSubscribed(ctx context.Context, sub *agentSub) {
	cluster := sub.cluster
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !s.agentSubscribed(cluster) {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
	}
	if sub.count(s.agents) {
		s.redeliver(cluster)
	}
}

func (s *Server) redeliver(cluster string) {
	for _, item := range s.pending.take(cluster) {
		s.specQueue.Push(item)
	}
}

// pendingSpecs holds undelivered spec events per consumer, one per
// resource (a later event for the same resource replaces the earlier; the
// delivery reads the current state anyway).
type pendingSpecs struct {
	mu    sync.Mutex
	items map[string]map[string]specItem
}

func newPendingSpecs() *pendingSpecs {
	return &pendingSpecs{items: make(map[string]map[string]specItem)}
}

func (p *pendingSpecs) add(cluster string, item specItem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.items[cluster]
	if m == nil {
		m = make(map[string]specItem)
		p.items[cluster] = m
	}
	if old, ok := m[item.id]; ok && old.eventType == maestro.TypeSpecCreate && item.eventType != maestro.TypeSpecDelete {
		// The agent has never seen it: it is still a create.
		item.eventType = old.eventType
	}
	m[item.id] = item
}

func (p *pendingSpecs) take(cluster string) []specItem {
	p.mu.Lock()
	m := p.items[cluster]
	delete(p.items, cluster)
	p.mu.Unlock()
	out := make([]specItem, 0, len(m))
	for _, it := range m {
		out = append(out, it)
	}
	return out
}
