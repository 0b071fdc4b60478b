package maestro

import (
	"errors"
	"strings"
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

func TestToCloudEventNilAttribute(t *testing.T) {
	ce := &pbv1.CloudEvent{Id: "x", SpecVersion: SpecVersion, Type: TypeSpecCreate, Source: "s",
		Attributes: map[string]*pbv1.CloudEventAttributeValue{AttrClusterName: nil}}
	if _, err := ToCloudEvent(ce); err == nil || !strings.Contains(err.Error(), AttrClusterName) {
		t.Errorf("err = %v", err)
	}
}

// FuzzToCloudEvent decodes arbitrary wire bytes as the SDK reader would:
// it may fail, never panic, and what it accepts must encode again. Seeds
// are the small golden events, so minimisation stays cheap in this large
// test binary.
func FuzzToCloudEvent(f *testing.F) {
	for _, name := range []string{"05b-agent-spec-resync_request-empty", "07-source-status-resync_request",
		"09-source-spec-delete_request", "12-heartbeat"} {
		f.Add(loadGolden(f, name).event)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ce, err := Unmarshal(b)
		if err != nil {
			return
		}
		evt, err := ToCloudEvent(ce)
		if err != nil {
			return
		}
		if _, err := FromCloudEvent(evt); err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
	})
}
