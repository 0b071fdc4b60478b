package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	grpcprotocol "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protocol"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/payload"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"

	"github.com/cereplay/cereplay/maestro"
)

// sourceServer is the source-facing gRPC port (:8090), modelled on
// Maestro's cmd/maestro/server/grpc_server.go. Its errors are plain errors,
// which gRPC reports with code Unknown, as Maestro's are.
type sourceServer struct {
	pbv1.UnimplementedCloudEventServiceServer
	s *Server
}

// Publish stores a spec create, update or delete, or answers a status
// resync request.
func (src *sourceServer) Publish(ctx context.Context, req *pbv1.PublishRequest) (*emptypb.Empty, error) {
	s := src.s
	if err := s.sleepLatency(ctx); err != nil {
		return nil, err
	}
	if req.GetEvent() == nil {
		return nil, errors.New("failed to convert to cloudevent: publish request has no event")
	}
	s.metrics.received.WithLabelValues(portSource, maestro.ShortType(req.Event.GetType())).Inc()
	// As Maestro's metrics interceptor, which decodes before the handler.
	evt, err := binding.ToEvent(ctx, grpcprotocol.NewMessage(req.Event))
	if err != nil {
		return nil, fmt.Errorf("failed to convert to cloudevent: %v", err)
	}
	eventType, err := types.ParseCloudEventsType(evt.Type())
	if err != nil {
		return nil, fmt.Errorf("failed to parse cloud event type %s, %v", evt.Type(), err)
	}
	if eventType.Action == types.ResyncRequestAction {
		if err := s.respondStatusResync(evt.Source(), evt.Data()); err != nil {
			return nil, fmt.Errorf("failed to respond resync status request: %v", err)
		}
		return &emptypb.Empty{}, nil
	}
	sr, err := decodeSpecRequest(evt)
	if err != nil {
		return nil, fmt.Errorf("failed to decode cloudevent: %v", err)
	}
	accepted := time.Now()
	switch eventType.Action {
	case "create_request":
		sp, err := newSpec(evt, sr.ResourceID, accepted, s.canon)
		if err != nil {
			return nil, specError("create", err)
		}
		_, err = s.store.create(resource{
			ID: sr.ResourceID, Consumer: sr.Consumer, Source: sr.Source,
			Version: sr.Version, CreatedAt: accepted, Spec: sp,
		})
		switch {
		case errors.Is(err, errUnknownConsumer):
			return nil, fmt.Errorf(`failed to create resource: Unable to create Resource: ERROR: insert or update on table "resources" violates foreign key constraint "fk_resources_consumers" (SQLSTATE 23503): consumer %q does not exist`, sr.Consumer)
		case errors.Is(err, errResourceExists):
			return nil, errors.New("failed to create resource: This Resource already exists")
		case err != nil:
			return nil, fmt.Errorf("failed to create resource: %v", err)
		}
		s.specQueue.Push(specItem{id: sr.ResourceID, eventType: maestro.TypeSpecCreate, accepted: accepted})
	case "update_request":
		found, ok := s.store.get(sr.ResourceID)
		if !ok {
			return nil, fmt.Errorf("failed to get resource: Resource with id='%s' not found", sr.ResourceID)
		}
		sp, err := newSpec(evt, sr.ResourceID, found.CreatedAt, s.canon)
		if err != nil {
			return nil, specError("update", err)
		}
		_, changed, err := s.store.update(sr.ResourceID, sr.Version, sp)
		switch {
		case errors.Is(err, errResourceNotFound):
			return nil, fmt.Errorf("failed to get resource: Resource with id='%s' not found", sr.ResourceID)
		case errors.Is(err, errResourceDeleting):
			return nil, fmt.Errorf("failed to update resource: the resource is under deletion, id: %s", sr.ResourceID)
		case errors.Is(err, errStaleVersion):
			cur, _ := s.store.get(sr.ResourceID)
			return nil, fmt.Errorf("failed to update resource: the resource version is not the latest, the latest version: %d", cur.Version)
		case err != nil:
			return nil, fmt.Errorf("failed to update resource: %v", err)
		}
		if changed {
			s.specQueue.Push(specItem{id: sr.ResourceID, eventType: maestro.TypeSpecUpdate, accepted: accepted})
		}
	case "delete_request":
		if _, changed := s.store.markDeleting(sr.ResourceID); changed {
			s.specQueue.Push(specItem{id: sr.ResourceID, eventType: maestro.TypeSpecDelete, accepted: accepted})
		}
	default:
		return nil, fmt.Errorf("unsupported action %s", eventType.Action)
	}
	return &emptypb.Empty{}, nil
}

// specError words a failure to prepare a spec as Maestro does: invalid
// manifests fail the create/update, anything else the decoding.
func specError(action string, err error) error {
	if errors.Is(err, errInvalidManifest) {
		return fmt.Errorf("failed to %s resource: %v", action, err)
	}
	return fmt.Errorf("failed to decode cloudevent: %v", err)
}

// respondStatusResync answers a source's status resync request: every
// stored status of the source when the request lists no hashes, otherwise
// those whose hash differs from the listed one; resources the source did
// not list are skipped. Answers go to every subscriber of the source.
func (s *Server) respondStatusResync(source string, data []byte) error {
	objs := s.store.listBySource(source)
	var hashes payload.ResourceStatusHashList
	if err := json.Unmarshal(data, &hashes); err != nil {
		return fmt.Errorf("failed to decode status resync request: failed to unmarshal status resync request payload %s, %v", data, err)
	}
	want := make(map[string]string, len(hashes.Hashes))
	for _, h := range hashes.Hashes {
		want[h.ResourceID] = h.StatusHash
	}
	now := time.Now()
	for i := range objs {
		r := &objs[i]
		if r.Status == nil {
			// Maestro would fail to encode a resource without status;
			// there is nothing to resend.
			continue
		}
		if len(want) > 0 {
			last, ok := want[r.ID]
			if !ok || last == r.Status.StatusHash {
				continue
			}
		}
		s.statusQueue.Push(statusItem{res: *r, status: r.Status, accepted: now})
	}
	return nil
}

// Subscribe streams the status of every resource of req.Source (cluster
// name and data type are ignored, as Maestro does) plus heartbeats.
func (src *sourceServer) Subscribe(req *pbv1.SubscriptionRequest, stream pbv1.CloudEventService_SubscribeServer) error {
	s := src.s
	id := uuid.NewString()
	ctx := stream.Context()
	// Registered before the header goes out, as Maestro registers with its
	// broadcaster first: a client that waits for the header (the SDK, the
	// replayer) may publish at once, and a status forwarded before the
	// registration was lost.
	sub := &sourceSubscriber{source: req.GetSource(), events: make(chan forwarded, subscriberBuffer), done: ctx.Done()}
	s.sources.add(id, sub)
	defer s.sources.remove(id)
	if err := stream.SendHeader(metadata.Pairs(maestro.SubscriptionIDHeader, id)); err != nil {
		return fmt.Errorf("failed to send subscription header for subID %s: %w", id, err)
	}
	s.metrics.subscribers.WithLabelValues(portSource).Inc()
	defer s.metrics.subscribers.WithLabelValues(portSource).Dec()

	var heartbeat <-chan time.Time
	if s.cfg.HeartbeatInterval > 0 {
		t := time.NewTicker(s.cfg.HeartbeatInterval)
		defer t.Stop()
		heartbeat = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-heartbeat:
			if err := stream.Send(maestro.NewHeartbeat(uuid.NewString())); err != nil {
				return err
			}
		case f := <-sub.events:
			if err := stream.Send(f.event); err != nil {
				return err
			}
			s.metrics.sent.WithLabelValues(portSource, maestro.ShortType(f.event.GetType())).Inc()
			s.metrics.statusForward.Observe(time.Since(f.accepted).Seconds())
		}
	}
}

// subscriberBuffer is the per-stream event buffer, 100 as in Maestro and
// the SDK broker: a stream that does not drain stalls the forwarding.
const subscriberBuffer = 100

// forwarded is an event on its way to one source stream.
type forwarded struct {
	event    *pbv1.CloudEvent
	accepted time.Time
}

type sourceSubscriber struct {
	source string
	events chan forwarded
	done   <-chan struct{}
}

// sourceSubscribers is the registry of open source streams (Maestro's
// EventBroadcaster).
type sourceSubscribers struct {
	mu   sync.RWMutex
	subs map[string]*sourceSubscriber
}

func newSourceSubscribers() *sourceSubscribers {
	return &sourceSubscribers{subs: make(map[string]*sourceSubscriber)}
}

func (ss *sourceSubscribers) add(id string, sub *sourceSubscriber) {
	ss.mu.Lock()
	ss.subs[id] = sub
	ss.mu.Unlock()
}

func (ss *sourceSubscribers) remove(id string) {
	ss.mu.Lock()
	delete(ss.subs, id)
	ss.mu.Unlock()
}

func (ss *sourceSubscribers) of(source string) []*sourceSubscriber {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	var out []*sourceSubscriber
	for _, sub := range ss.subs {
		if sub.source == source {
			out = append(out, sub)
		}
	}
	return out
}

// statusItem is a status to forward to the subscribers of its source.
type statusItem struct {
	res      resource
	status   *statusRecord
	accepted time.Time
}

// statusWorker forwards stored status, one at a time, to every subscriber
// of the resource's source. The event is encoded once and shared: gRPC
// only reads it. A full subscriber buffer blocks the worker, as it blocks
// Maestro's broadcaster.
func (s *Server) statusWorker() {
	defer s.wg.Done()
	for {
		item, ok := s.statusQueue.Pop()
		if !ok {
			return
		}
		subs := s.sources.of(item.res.Source)
		if len(subs) == 0 {
			continue
		}
		evt, err := forwardEvent(&item.res, item.status, s.bundles)
		if err != nil {
			s.log.Error("encode status for source", "resource", item.res.ID, "err", err)
			continue
		}
		pb := &pbv1.CloudEvent{}
		if err := grpcprotocol.WritePBMessage(context.Background(), binding.ToMessage(evt), pb); err != nil {
			s.log.Error("encode status for source", "resource", item.res.ID, "err", err)
			continue
		}
		for _, sub := range subs {
			select {
			case sub.events <- forwarded{event: pb, accepted: item.accepted}:
			case <-sub.done:
			case <-s.done:
				return
			}
		}
	}
}
