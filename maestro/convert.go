package maestro

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protocol"
)

// ErrHeartbeat means a heartbeat was given where an event was expected.
// Heartbeats carry no attributes, so the SDK reader cannot decode them;
// skip them by type first.
var ErrHeartbeat = errors.New("maestro: heartbeat is not a cloudevent")

// ToCloudEvent decodes a wire CloudEvent the way Maestro and the SDK
// clients do (protocol.NewMessage + binding.ToEvent): an event without
// attributes has an unknown encoding and is rejected, unknown attribute
// keys are dropped, extensions are lower-cased.
func ToCloudEvent(ce *pbv1.CloudEvent) (evt *cloudevents.Event, err error) {
	if ce.GetType() == TypeHeartbeat {
		return nil, ErrHeartbeat
	}
	for key, v := range ce.GetAttributes() {
		if v == nil {
			// The SDK reader dereferences every value; a nil one (possible
			// only in a hand-built message, never after proto.Unmarshal)
			// would panic.
			return nil, fmt.Errorf("maestro: decode cloudevent %q: attribute %q has no value", ce.GetId(), key)
		}
	}
	evt, err = binding.ToEvent(context.Background(), protocol.NewMessage(ce))
	if err != nil {
		return nil, fmt.Errorf("maestro: decode cloudevent %q (type %q): %w", ce.GetId(), ce.GetType(), err)
	}
	return evt, nil
}

// FromCloudEvent encodes a CloudEvent to the wire form in binary content
// mode, exactly as every Maestro producer does
// (protocol.WritePBMessage(ctx, binding.ToMessage(evt), pbEvt)).
func FromCloudEvent(evt *cloudevents.Event) (*pbv1.CloudEvent, error) {
	pb := &pbv1.CloudEvent{}
	if err := protocol.WritePBMessage(context.Background(), binding.ToMessage(evt), pb); err != nil {
		return nil, fmt.Errorf("maestro: encode cloudevent %q (type %q): %w", evt.ID(), evt.Type(), err)
	}
	return pb, nil
}
