package wire

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
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

// StringAttr reads a ce_string in place: nil for an absent attribute or
// one of another type, the last entry of a key wins, and a malformed value
// is an error that names the attribute.
func TestStringAttr(t *testing.T) {
	ev := AppendEvent(nil, &Event{ID: []byte("1"), Attrs: []Attr{
		{Key: AttrClusterName, Kind: AttrString, Str: []byte("first")},
		{Key: AttrResourceVersion, Kind: AttrInteger, Num: 7},
	}})
	ev = appendAttrEntry(ev, &Attr{Key: AttrClusterName, Kind: AttrString, Str: []byte("last")})
	for _, c := range []struct{ key, want string }{
		{AttrClusterName, "last"}, {AttrResourceVersion, ""}, {AttrSequenceID, ""},
	} {
		got, err := StringAttr(ev, c.key)
		if err != nil || string(got) != c.want {
			t.Errorf("StringAttr(%s) = %q, %v; want %q", c.key, got, err, c.want)
		}
	}
	// An entry whose value claims more bytes than it has.
	bad := protowire.AppendTag(nil, fieldEntryKey, protowire.BytesType)
	bad = protowire.AppendString(bad, AttrSequenceID)
	bad = protowire.AppendTag(bad, fieldEntryValue, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0x1a, 0x09, 'x'})
	bad = protowire.AppendBytes(protowire.AppendTag(nil, fieldAttributes, protowire.BytesType), bad)
	if _, err := StringAttr(bad, AttrSequenceID); err == nil || !strings.Contains(err.Error(), AttrSequenceID) {
		t.Errorf("malformed value: err %v, want one naming %s", err, AttrSequenceID)
	}
}

// StringAttrs reads several keys in one walk with StringAttr's answer for
// each: on the golden events, on an event where a key repeats, and with a
// key asked for twice.
func TestStringAttrs(t *testing.T) {
	repeated := AppendEvent(nil, &Event{ID: []byte("1"), Attrs: []Attr{
		{Key: AttrClusterName, Kind: AttrString, Str: []byte("first")},
		{Key: AttrResourceID, Kind: AttrString, Str: []byte("rid")},
	}})
	repeated = appendAttrEntry(repeated, &Attr{Key: AttrClusterName, Kind: AttrString, Str: []byte("last")})
	var events [][]byte
	for _, ev := range goldenEvents(t) {
		events = append(events, ev)
	}
	events = append(events, repeated)
	keys := []string{AttrResourceID, "ce-metadata", AttrClusterName, AttrResourceVersion, AttrClusterName, "absent"}
	withBoth := 0 // events with a resource id and metadata, as a rewrite reads them
	for i, ev := range events {
		vals := make([][]byte, len(keys))
		if err := StringAttrs(ev, keys, vals); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		found := 0
		for j, key := range keys {
			want, err := StringAttr(ev, key)
			if err != nil {
				t.Fatalf("event %d: StringAttr(%s): %v", i, key, err)
			}
			if string(vals[j]) != string(want) || (vals[j] == nil) != (want == nil) {
				t.Errorf("event %d: StringAttrs[%s] = %q, StringAttr = %q", i, key, vals[j], want)
			}
			if want != nil {
				found++
			}
		}
		if vals[0] != nil && vals[1] != nil {
			withBoth++
		}
		if i == len(events)-1 && (found != 3 || string(vals[2]) != "last") {
			t.Errorf("repeated key: found %d values, cluster %q; want 3 and %q", found, vals[2], "last")
		}
	}
	if withBoth == 0 {
		t.Error("no golden event has both a resource id and metadata")
	}
}
