package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// TestAppendDataHead: an event appended without data, then AppendDataHead
// and the data, is byte for byte AppendEvent's with the data, and both are
// what a deterministic proto.Marshal of the event gives.
func TestAppendDataHead(t *testing.T) {
	data := bytes.Repeat([]byte(`{"conditions":[]}`), 20) // past one length byte
	e := Event{
		ID: []byte("id-1"), Source: []byte("agent"), SpecVersion: []byte("1.0"), Type: []byte("t"),
		Attrs: []Attr{
			{Key: AttrClusterName, Kind: AttrString, Str: []byte("cluster-1")},
			{Key: AttrResourceVersion, Kind: AttrInteger, Num: 2},
		},
		Data: data,
	}
	whole := AppendEvent([]byte("prefix"), &e)
	e.Data = nil
	inPlace := AppendEvent([]byte("prefix"), &e)
	inPlace = append(AppendDataHead(inPlace, len(data)), data...)
	if !bytes.Equal(inPlace, whole) {
		t.Fatalf("in place:\n%x\nwant AppendEvent's:\n%x", inPlace, whole)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pbv1.CloudEvent{
		Id: "id-1", Source: "agent", SpecVersion: "1.0", Type: "t",
		Attributes: map[string]*pbv1.CloudEventAttributeValue{
			AttrClusterName:     {Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: "cluster-1"}},
			AttrResourceVersion: {Attr: &pbv1.CloudEventAttributeValue_CeInteger{CeInteger: 2}},
		},
		Data: &pbv1.CloudEvent_BinaryData{BinaryData: data},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole[len("prefix"):], want) {
		t.Fatalf("AppendEvent:\n%x\nwant proto.Marshal's:\n%x", whole[len("prefix"):], want)
	}
}
