package maestro

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// TestCloudEventRoundTripGolden decodes every golden event as the SDK
// reader does and re-encodes it as the SDK writer does: the wire event
// must come back unchanged.
func TestCloudEventRoundTripGolden(t *testing.T) {
	for _, name := range goldenEventNames(t) {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			evt, err := ToCloudEvent(g.decoded)
			if g.decoded.GetType() == TypeHeartbeat {
				if !errors.Is(err, ErrHeartbeat) {
					t.Fatalf("heartbeat: err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if evt.ID() != g.decoded.GetId() || evt.Type() != g.decoded.GetType() {
				t.Errorf("decoded id/type %s %s", evt.ID(), evt.Type())
			}
			back, err := FromCloudEvent(evt)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, g.decoded) {
				t.Errorf("round trip differs:\n got %v\nwant %v", back, g.decoded)
			}
		})
	}
}

func TestToCloudEventRejectsNoAttributes(t *testing.T) {
	_, err := ToCloudEvent(&pbv1.CloudEvent{Id: "x", SpecVersion: SpecVersion, Type: TypeSpecCreate, Source: "s"})
	if err == nil {
		t.Fatal("an event without attributes decoded")
	}
}
