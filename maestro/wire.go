package maestro

import (
	"fmt"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/maestro/wire"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// Marshal encodes a CloudEvent to its protobuf wire bytes. The attribute map
// is written in sorted key order, so the same event always yields the same
// bytes (plain proto.Marshal iterates the map in random order).
func Marshal(ce *pbv1.CloudEvent) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("maestro: marshal cloudevent: %w", err)
	}
	return b, nil
}

// Unmarshal decodes the protobuf wire bytes of a CloudEvent.
func Unmarshal(b []byte) (*pbv1.CloudEvent, error) {
	ce := &pbv1.CloudEvent{}
	if err := proto.Unmarshal(b, ce); err != nil {
		return nil, fmt.Errorf("maestro: unmarshal cloudevent (%d bytes): %w", len(b), err)
	}
	return ce, nil
}

// PublishRequestEvent returns the bytes of the CloudEvent inside the wire
// bytes of a PublishRequest (its field 1), without decoding the event.
func PublishRequestEvent(b []byte) ([]byte, error) {
	return wire.PublishRequestEvent(b)
}

// ErrNoEvent means a PublishRequest carries no event.
var ErrNoEvent = wire.ErrNoEvent

// AgentSubscription is the SubscriptionRequest an agent sends to the
// broker (:8091) to receive its cluster's spec events.
func AgentSubscription(cluster string) *pbv1.SubscriptionRequest {
	return &pbv1.SubscriptionRequest{ClusterName: cluster, DataType: DataType}
}

// SourceSubscription is the SubscriptionRequest a source sends to the
// source server (:8090) to receive the status of all its resources.
func SourceSubscription(sourceID string) *pbv1.SubscriptionRequest {
	return &pbv1.SubscriptionRequest{Source: sourceID, DataType: DataType}
}

// NewHeartbeat builds the heartbeat both Maestro servers send on every
// Subscribe stream: only id, spec version and type (sdk-go heartbeat.go).
func NewHeartbeat(id string) *pbv1.CloudEvent {
	return &pbv1.CloudEvent{Id: id, SpecVersion: SpecVersion, Type: TypeHeartbeat}
}

// SetStringAttr sets attribute key to a ce_string value.
func SetStringAttr(ce *pbv1.CloudEvent, key, val string) {
	setAttr(ce, key, &pbv1.CloudEventAttributeValue{Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: val}})
}

// StringAttr returns the ce_string value of attribute key, or "" when it is
// absent or of another type (the SDK reads string extensions only from
// ce_string).
func StringAttr(ce *pbv1.CloudEvent, key string) string {
	return ce.GetAttributes()[key].GetCeString()
}

// SetResourceVersion sets ce-resourceversion the way the SDK writes an
// int64: as ce_integer. Versions beyond int32, which the SDK cannot send
// either, are written as a decimal ce_string.
func SetResourceVersion(ce *pbv1.CloudEvent, v int64) {
	if a := wire.ResourceVersionAttr(v); a.Kind == wire.AttrString {
		SetStringAttr(ce, AttrResourceVersion, string(a.Str))
	} else {
		setAttr(ce, AttrResourceVersion, &pbv1.CloudEventAttributeValue{Attr: &pbv1.CloudEventAttributeValue_CeInteger{CeInteger: a.Num}})
	}
}

// SetSequenceID sets ce-sequenceid, the status ordering key.
func SetSequenceID(ce *pbv1.CloudEvent, s string) {
	SetStringAttr(ce, AttrSequenceID, s)
}

func setAttr(ce *pbv1.CloudEvent, key string, v *pbv1.CloudEventAttributeValue) {
	if ce.Attributes == nil {
		ce.Attributes = make(map[string]*pbv1.CloudEventAttributeValue)
	}
	ce.Attributes[key] = v
}

// CountEvents receives from a Subscribe stream until it ends (the error
// that ended it is returned) and adds one to n for every event that is
// not a heartbeat: what a load test's agents and sources do with what
// they are sent.
func CountEvents(s pbv1.CloudEventService_SubscribeClient, n *atomic.Int64) error {
	for {
		ev, err := s.Recv()
		if err != nil {
			return err
		}
		if ev.GetType() != TypeHeartbeat {
			n.Add(1)
		}
	}
}
