package wire

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// FuzzPatchAttrs cross-checks PatchAttrs against decode, set, encode: when
// protobuf accepts the bytes, the patched bytes decode to the event with
// the new value set (and StringAttr reads it back); on any input it must
// not panic.
func FuzzPatchAttrs(f *testing.F) {
	for _, b := range goldenEvents(f) {
		f.Add(b, "new-value")
	}
	f.Add([]byte{}, "")
	f.Add([]byte{0x2a, 0x06, 0x0a, 0x00, 0x12, 0x02, 0x10, 0x07}, "x")
	f.Fuzz(func(t *testing.T, b []byte, val string) {
		if !utf8.ValidString(val) {
			return // proto refuses to encode such a value; the caller builds values.
		}
		got, err := PatchAttrs(nil, b, []Attr{{Key: AttrSequenceID, Kind: AttrString, Str: []byte(val)}})
		want := &pbv1.CloudEvent{}
		if proto.Unmarshal(b, want) != nil {
			return // PatchAttrs copies what it does not read; any answer is fine.
		}
		if err != nil {
			t.Fatalf("PatchAttrs failed on a valid event: %v", err)
		}
		if want.Attributes == nil {
			want.Attributes = map[string]*pbv1.CloudEventAttributeValue{}
		}
		want.Attributes[AttrSequenceID] = &pbv1.CloudEventAttributeValue{Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: val}}
		ev := &pbv1.CloudEvent{}
		if err := proto.Unmarshal(got, ev); err != nil {
			t.Fatalf("patched event does not decode: %v", err)
		}
		if !proto.Equal(ev, want) {
			t.Fatalf("patched %v, want %v", ev, want)
		}
		v, err := StringAttr(got, AttrSequenceID)
		if err != nil || string(v) != val {
			t.Fatalf("StringAttr = %q, %v; want %q", v, err, val)
		}
	})
}
