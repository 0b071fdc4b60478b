package maestro

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubscriptionsByteExact(t *testing.T) {
	for _, tc := range []struct {
		file string
		req  *pbv1.SubscriptionRequest
	}{
		{"13-agent-subscription-request.pb.bin", AgentSubscription(goldenCluster)},
		{"14-source-subscription-request.pb.bin", SourceSubscription("maestro")},
	} {
		got, err := proto.Marshal(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if want := readExample(t, tc.file); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.file, got, want)
		}
	}
}

func TestHeartbeatByteExact(t *testing.T) {
	want := readExample(t, "12-heartbeat.pb.bin")
	got, err := Marshal(NewHeartbeat("0d6e9c5a-1f2b-4e3c-9a8d-7b6c5d4e3f21"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("heartbeat:\n got %x\nwant %x", got, want)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	g := loadGolden(t, "03-agent-status-update_request")
	first, err := Marshal(g.decoded)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Marshal(g.decoded)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("Marshal gave different bytes for the same event")
		}
	}
	if len(first) != len(g.event) {
		t.Errorf("re-marshalled size %d, wire size %d", len(first), len(g.event))
	}
	back, err := Unmarshal(first)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, g.decoded) {
		t.Error("round trip changed the event")
	}
}

func TestUnmarshalError(t *testing.T) {
	if _, err := Unmarshal([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("Unmarshal accepted truncated bytes")
	}
}

func TestPublishRequestEvent(t *testing.T) {
	ce := &pbv1.CloudEvent{Id: "x", Type: TypeSpecCreate}
	req, err := proto.Marshal(&pbv1.PublishRequest{Event: ce})
	if err != nil {
		t.Fatal(err)
	}
	b, err := PublishRequestEvent(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Unmarshal(b); !proto.Equal(got, ce) {
		t.Errorf("got %v", got)
	}
	if _, err := PublishRequestEvent(nil); !errors.Is(err, ErrNoEvent) {
		t.Errorf("empty request: err = %v", err)
	}
	if _, err := PublishRequestEvent([]byte{0x0a, 0x09}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated request: err = %v", err)
	}
}

func TestAttrHelpers(t *testing.T) {
	ce := &pbv1.CloudEvent{}
	SetStringAttr(ce, AttrClusterName, "c1")
	SetSequenceID(ce, "123")
	SetResourceVersion(ce, 7)
	if got := StringAttr(ce, AttrClusterName); got != "c1" {
		t.Errorf("clustername %q", got)
	}
	if got := StringAttr(ce, AttrSequenceID); got != "123" {
		t.Errorf("sequenceid %q", got)
	}
	if got := ce.Attributes[AttrResourceVersion].GetCeInteger(); got != 7 {
		t.Errorf("resourceversion %d", got)
	}
	SetResourceVersion(ce, 1<<40)
	if got := StringAttr(ce, AttrResourceVersion); got != "1099511627776" {
		t.Errorf("large resourceversion %q", got)
	}
	ce.Attributes[AttrTime] = &pbv1.CloudEventAttributeValue{Attr: &pbv1.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Unix(0, 0))}}
	if got := StringAttr(ce, AttrTime); got != "" {
		t.Errorf("StringAttr of a timestamp = %q", got)
	}
	if got := StringAttr(&pbv1.CloudEvent{}, AttrClusterName); got != "" {
		t.Errorf("StringAttr on empty event = %q", got)
	}
	b, _ := Marshal(ce)
	k, err := ExtractKeys(b)
	if err != nil || k.ResourceVersion != 1<<40 || k.SequenceID != "123" {
		t.Errorf("keys %+v, err %v", k, err)
	}
}
