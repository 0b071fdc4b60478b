package maestro

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

const (
	goldenResourceID = "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"
	goldenCluster    = "maestro-cluster-1"
	goldenAgent      = "maestro-cluster-1-work-agent"
)

func TestExtractKeysGolden(t *testing.T) {
	spec := func(typ, id, source string, rv int64, deleting bool) Keys {
		return Keys{Type: typ, ID: id, Source: source, ClusterName: goldenCluster, ResourceID: goldenResourceID,
			ResourceVersion: rv, HasResourceVersion: true, Deleting: deleting}
	}
	status := func(id, seq string) Keys {
		return Keys{Type: TypeStatusUpdate, ID: id, Source: goldenAgent, ClusterName: goldenCluster, ResourceID: goldenResourceID,
			OriginalSource: BrokerSource, SequenceID: seq, ResourceVersion: 1, HasResourceVersion: true}
	}
	want := map[string]Keys{
		"01-source-spec-create_request":                        spec(TypeSpecCreate, "5f0c3a8e-2b0e-4a52-9d0e-7b7d3f0c9a11", "maestro", 0, false),
		"02-broker-to-agent-spec-create_request":               spec(TypeSpecCreate, "5f0c3a8e-2b0e-4a52-9d0e-7b7d3f0c9a11", BrokerSource, 1, false),
		"03-agent-status-update_request":                       status("9a4b1f7c-6d2e-4c1a-8f3b-2e5d7c9a0b12", "2126483703730278400"),
		"03ra-agent-status-update_request-realistic-applied":   status("7772f80f-5cd6-47e5-a372-ecd3686ad688", "2126483703738667008"),
		"03rb-agent-status-update_request-realistic-available": status("9060ff5c-22c2-410c-a2d6-41e7e342ccff", "2126483703742861312"),
		"04-server-to-source-status-update_request":            status("9a4b1f7c-6d2e-4c1a-8f3b-2e5d7c9a0b12", "2126483703730278400"),
		"04r-server-to-source-status-update_request-realistic": status("629ca124-c5e4-49b6-8518-ad9e2691d6af", "2126483703751249920"),
		"05-agent-spec-resync_request-50works": {Type: TypeSpecResyncRequest, ID: "845753e8-974f-4604-82c3-8373dc19653a",
			Source: goldenAgent, ClusterName: goldenCluster},
		"05b-agent-spec-resync_request-empty": {Type: TypeSpecResyncRequest, ID: "b6a54ca8-fe5c-4054-9223-50047613f769",
			Source: goldenAgent, ClusterName: goldenCluster},
		"06-broker-to-agent-spec-resync_response": spec(TypeSpecResyncResponse, "5f0c3a8e-2b0e-4a52-9d0e-7b7d3f0c9a11", BrokerSource, 1, false),
		"07-source-status-resync_request":         {Type: TypeStatusResyncRequest, ID: "9babd14f-fb20-4567-8c23-3dbdd2b9b808", Source: "maestro"},
		"08-source-spec-update_request":           spec(TypeSpecUpdate, "17c958e7-4765-4868-abcc-7e450c5afd9b", "maestro", 0, false),
		"09-source-spec-delete_request":           spec(TypeSpecDelete, "c7fd01b2-a019-444a-8987-4c004c11dbac", "maestro", 0, true),
		"10-broker-to-agent-spec-delete_request":  spec(TypeSpecDelete, "e5355943-32f6-4439-8b9a-eaba3ef8a75f", BrokerSource, 1, true),
		"11-agent-status-deleted":                 status("a4c39b76-a728-462a-9b66-dc4a7432d00b", "2126483703772221440"),
		"12-heartbeat":                            {Type: TypeHeartbeat, ID: "0d6e9c5a-1f2b-4e3c-9a8d-7b6c5d4e3f21"},
	}
	names := goldenEventNames(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			got, err := ExtractKeys(g.event)
			if err != nil {
				t.Fatal(err)
			}
			ref, ok := keysFromDecoded(g.decoded)
			if !ok {
				t.Fatal("reference decoder rejects the golden event")
			}
			if got != ref {
				t.Errorf("ExtractKeys disagrees with proto.Unmarshal:\n got %+v\nwant %+v", got, ref)
			}
			w, found := want[name]
			if !found {
				t.Fatalf("no expected keys for golden %s", name)
			}
			if got != w {
				t.Errorf("keys:\n got %+v\nwant %+v", got, w)
			}
		})
	}
	if len(names) != len(want) {
		t.Errorf("%d golden events, %d expectations", len(names), len(want))
	}
}

func TestExtractKeysRules(t *testing.T) {
	str := func(s string) *pbv1.CloudEventAttributeValue {
		return &pbv1.CloudEventAttributeValue{Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: s}}
	}
	tests := []struct {
		name    string
		attrs   map[string]*pbv1.CloudEventAttributeValue
		want    Keys
		wantErr error
	}{
		{name: "decimal string version", attrs: map[string]*pbv1.CloudEventAttributeValue{AttrResourceVersion: str("42")},
			want: Keys{ResourceVersion: 42, HasResourceVersion: true}},
		{name: "negative integer version", attrs: map[string]*pbv1.CloudEventAttributeValue{
			AttrResourceVersion: {Attr: &pbv1.CloudEventAttributeValue_CeInteger{CeInteger: -3}}},
			want: Keys{ResourceVersion: -3, HasResourceVersion: true}},
		{name: "non-decimal version", attrs: map[string]*pbv1.CloudEventAttributeValue{AttrResourceVersion: str("v1")},
			wantErr: ErrAttrType},
		{name: "boolean version", attrs: map[string]*pbv1.CloudEventAttributeValue{
			AttrResourceVersion: {Attr: &pbv1.CloudEventAttributeValue_CeBoolean{CeBoolean: true}}}, wantErr: ErrAttrType},
		{name: "cluster as uri is not a string", attrs: map[string]*pbv1.CloudEventAttributeValue{
			AttrClusterName: {Attr: &pbv1.CloudEventAttributeValue_CeUri{CeUri: "c1"}}}, want: Keys{}},
		{name: "deletion timestamp as string still deletes", attrs: map[string]*pbv1.CloudEventAttributeValue{
			AttrDeletionTimestamp: str("2024-12-20T09:30:00Z")}, want: Keys{Deleting: true}},
		{name: "unknown attributes ignored", attrs: map[string]*pbv1.CloudEventAttributeValue{"ce-other": str("x"), "subject": str("y")},
			want: Keys{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(&pbv1.CloudEvent{Attributes: tt.attrs, Data: &pbv1.CloudEvent_BinaryData{BinaryData: []byte("{}")}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ExtractKeys(b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestExtractKeysLastWins checks proto3 merge rules on hand-made wire
// bytes: a repeated field or map key takes its last value.
func TestExtractKeysLastWins(t *testing.T) {
	first, _ := Marshal(&pbv1.CloudEvent{Id: "a", Type: "t1", Attributes: map[string]*pbv1.CloudEventAttributeValue{
		AttrClusterName: {Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: "c1"}}}})
	second, _ := Marshal(&pbv1.CloudEvent{Id: "b", Attributes: map[string]*pbv1.CloudEventAttributeValue{
		AttrClusterName: {Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: "c2"}}}})
	b := append(append([]byte(nil), first...), second...)
	got, err := ExtractKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	ce := &pbv1.CloudEvent{}
	if err := proto.Unmarshal(b, ce); err != nil {
		t.Fatal(err)
	}
	ref, _ := keysFromDecoded(ce)
	want := Keys{ID: "b", Type: "t1", ClusterName: "c2"}
	if got != want || ref != want {
		t.Errorf("got %+v, reference %+v, want %+v", got, ref, want)
	}
}

func TestExtractKeysMalformed(t *testing.T) {
	g := loadGolden(t, "01-source-spec-create_request")
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated", g.event[:len(g.event)/2]},
		{"bad tag", []byte{0x00}},
		{"length past end", []byte{0x0a, 0x10, 'x'}},
		{"stray end group", []byte{0x0c}},
		{"bad attribute entry", []byte{0x2a, 0x02, 0x0a, 0x05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ExtractKeys(tc.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}
