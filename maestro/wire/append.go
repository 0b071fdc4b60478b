package wire

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// AttrKind says which member of a CloudEventAttributeValue an Attr holds.
type AttrKind uint8

// The attribute value kinds AppendEvent writes.
const (
	AttrString AttrKind = iota + 1
	AttrInteger
	AttrTimestamp
)

// Attr is one entry of CloudEvent.attributes.
type Attr struct {
	Key   string
	Kind  AttrKind
	Str   []byte // AttrString
	Num   int32  // AttrInteger
	Sec   int64  // AttrTimestamp
	Nanos int32  // AttrTimestamp
}

// Event is a CloudEvent to encode. Attrs must be sorted by key: that is
// the order a deterministic proto.Marshal writes map entries in.
type Event struct {
	ID, Source, SpecVersion, Type []byte
	Attrs                         []Attr
	Data                          []byte
}

// AppendEvent appends the protobuf encoding of e, byte for byte what
// proto.MarshalOptions{Deterministic: true} gives for the equivalent
// pbv1.CloudEvent (proto3: empty strings are left out; map entries always
// carry key and value; a set oneof is written even when zero).
func AppendEvent(b []byte, e *Event) []byte {
	b = appendString(b, fieldID, e.ID)
	b = appendString(b, fieldSource, e.Source)
	b = appendString(b, fieldSpecVersion, e.SpecVersion)
	b = appendString(b, fieldType, e.Type)
	for i := range e.Attrs {
		b = appendAttrEntry(b, &e.Attrs[i])
	}
	if len(e.Data) > 0 {
		b = append(AppendDataHead(b, len(e.Data)), e.Data...)
	}
	return b
}

// AppendDataHead appends the tag and length of a CloudEvent's binary_data
// of n bytes (n > 0): after an AppendEvent without Data, a caller can
// write the data in place instead of building it apart and copying it.
// Data is the event's last field, so the result is AppendEvent's with it.
func AppendDataHead(b []byte, n int) []byte {
	b = protowire.AppendTag(b, fieldBinaryData, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// appendAttrEntry appends a as one CloudEvent.attributes map entry.
func appendAttrEntry(b []byte, a *Attr) []byte {
	vsize := a.valueSize()
	entry := protowire.SizeTag(fieldEntryKey) + protowire.SizeBytes(len(a.Key)) +
		protowire.SizeTag(fieldEntryValue) + protowire.SizeBytes(vsize)
	b = protowire.AppendTag(b, fieldAttributes, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entry))
	b = protowire.AppendTag(b, fieldEntryKey, protowire.BytesType)
	b = protowire.AppendString(b, a.Key)
	b = protowire.AppendTag(b, fieldEntryValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(vsize))
	return a.appendValue(b)
}

func appendString(b []byte, num protowire.Number, s []byte) []byte {
	if len(s) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, s)
}

// int32 fields are encoded as the sign-extended 64-bit varint.
func int32Varint(v int32) uint64 { return uint64(int64(v)) }

func (a *Attr) timestampSize() int {
	n := 0
	if a.Sec != 0 {
		n += protowire.SizeTag(fieldSeconds) + protowire.SizeVarint(uint64(a.Sec))
	}
	if a.Nanos != 0 {
		n += protowire.SizeTag(fieldNanos) + protowire.SizeVarint(int32Varint(a.Nanos))
	}
	return n
}

// valueSize is the size of the CloudEventAttributeValue message.
func (a *Attr) valueSize() int {
	switch a.Kind {
	case AttrString:
		return protowire.SizeTag(fieldCeString) + protowire.SizeBytes(len(a.Str))
	case AttrInteger:
		return protowire.SizeTag(fieldCeInteger) + protowire.SizeVarint(int32Varint(a.Num))
	case AttrTimestamp:
		return protowire.SizeTag(fieldCeTimestamp) + protowire.SizeBytes(a.timestampSize())
	}
	return 0
}

func (a *Attr) appendValue(b []byte) []byte {
	switch a.Kind {
	case AttrString:
		b = protowire.AppendTag(b, fieldCeString, protowire.BytesType)
		return protowire.AppendBytes(b, a.Str)
	case AttrInteger:
		b = protowire.AppendTag(b, fieldCeInteger, protowire.VarintType)
		return protowire.AppendVarint(b, int32Varint(a.Num))
	case AttrTimestamp:
		b = protowire.AppendTag(b, fieldCeTimestamp, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(a.timestampSize()))
		if a.Sec != 0 {
			b = protowire.AppendTag(b, fieldSeconds, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(a.Sec))
		}
		if a.Nanos != 0 {
			b = protowire.AppendTag(b, fieldNanos, protowire.VarintType)
			b = protowire.AppendVarint(b, int32Varint(a.Nanos))
		}
	}
	return b
}
