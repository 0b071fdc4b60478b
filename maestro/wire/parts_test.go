package wire

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// FuzzParts cross-checks Parts against proto.Unmarshal: when protobuf
// accepts the bytes, Parts names the same id, type, data and attributes
// (the last of a repeated field or key winning, as in the decoded event),
// and StringValue reads each string attribute; on any input it must not
// panic.
func FuzzParts(f *testing.F) {
	for _, b := range goldenEvents(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string][]byte{}
		err := Parts(b, func(name []byte, attr bool, v []byte) error {
			key := string(name)
			if attr {
				key = "attr:" + key
			}
			got[key] = v
			return nil
		})
		ce := &pbv1.CloudEvent{}
		if proto.Unmarshal(b, ce) != nil {
			return
		}
		if err != nil {
			t.Fatalf("Parts failed on a valid event: %v", err)
		}
		// Data is a oneof: a later text_data or proto_data replaces the
		// binary data in the decoded event, while Parts reports each.
		_, binary := ce.GetData().(*pbv1.CloudEvent_BinaryData)
		if string(got["id"]) != ce.GetId() || string(got["type"]) != ce.GetType() || binary && string(got["data"]) != string(ce.GetBinaryData()) {
			t.Fatalf("id %q type %q data %d bytes, want %q %q %d", got["id"], got["type"], len(got["data"]), ce.GetId(), ce.GetType(), len(ce.GetBinaryData()))
		}
		n := 0
		for k := range got {
			if strings.HasPrefix(k, "attr:") {
				n++
			}
		}
		if n != len(ce.GetAttributes()) {
			t.Fatalf("%d attributes, want %d", n, len(ce.GetAttributes()))
		}
		for key, want := range ce.GetAttributes() {
			v, ok := got["attr:"+key]
			if !ok {
				t.Fatalf("attribute %q not reported", key)
			}
			if s, isStr := want.GetAttr().(*pbv1.CloudEventAttributeValue_CeString); isStr && string(StringValue(v)) != s.CeString {
				t.Fatalf("attribute %q: StringValue %q, want %q", key, StringValue(v), s.CeString)
			}
		}
	})
}
