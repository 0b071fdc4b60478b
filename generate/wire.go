package generate

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of pbv1.CloudEvent, CloudEventAttributeValue and
// google.protobuf.Timestamp (sdk-go cloudevent.proto).
const (
	fieldID          protowire.Number = 1
	fieldSource      protowire.Number = 2
	fieldSpecVersion protowire.Number = 3
	fieldType        protowire.Number = 4
	fieldAttributes  protowire.Number = 5
	fieldBinaryData  protowire.Number = 6

	fieldMapKey   protowire.Number = 1
	fieldMapValue protowire.Number = 2

	fieldCeInteger   protowire.Number = 2
	fieldCeString    protowire.Number = 3
	fieldCeTimestamp protowire.Number = 7

	fieldSeconds protowire.Number = 1
	fieldNanos   protowire.Number = 2
)

type attrKind uint8

const (
	attrString attrKind = iota + 1
	attrInteger
	attrTimestamp
)

// attr is one entry of CloudEvent.attributes.
type attr struct {
	key   string
	kind  attrKind
	str   []byte // attrString
	num   int32  // attrInteger
	sec   int64  // attrTimestamp
	nanos int32  // attrTimestamp
}

// event is a CloudEvent to encode. attrs must be sorted by key: that is
// the order a deterministic proto.Marshal writes map entries in.
type event struct {
	id, source, specVersion, typ []byte
	attrs                        []attr
	data                         []byte
}

// appendEvent appends the protobuf encoding of e, byte for byte what
// proto.MarshalOptions{Deterministic: true} gives for the equivalent
// pbv1.CloudEvent (proto3: empty strings are left out; map entries always
// carry key and value; a set oneof is written even when zero).
func appendEvent(b []byte, e *event) []byte {
	b = appendString(b, fieldID, e.id)
	b = appendString(b, fieldSource, e.source)
	b = appendString(b, fieldSpecVersion, e.specVersion)
	b = appendString(b, fieldType, e.typ)
	for i := range e.attrs {
		a := &e.attrs[i]
		vsize := a.valueSize()
		entry := protowire.SizeTag(fieldMapKey) + protowire.SizeBytes(len(a.key)) +
			protowire.SizeTag(fieldMapValue) + protowire.SizeBytes(vsize)
		b = protowire.AppendTag(b, fieldAttributes, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entry))
		b = protowire.AppendTag(b, fieldMapKey, protowire.BytesType)
		b = protowire.AppendString(b, a.key)
		b = protowire.AppendTag(b, fieldMapValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(vsize))
		b = a.appendValue(b)
	}
	if len(e.data) > 0 {
		b = protowire.AppendTag(b, fieldBinaryData, protowire.BytesType)
		b = protowire.AppendBytes(b, e.data)
	}
	return b
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

func (a *attr) timestampSize() int {
	n := 0
	if a.sec != 0 {
		n += protowire.SizeTag(fieldSeconds) + protowire.SizeVarint(uint64(a.sec))
	}
	if a.nanos != 0 {
		n += protowire.SizeTag(fieldNanos) + protowire.SizeVarint(int32Varint(a.nanos))
	}
	return n
}

// valueSize is the size of the CloudEventAttributeValue message.
func (a *attr) valueSize() int {
	switch a.kind {
	case attrString:
		return protowire.SizeTag(fieldCeString) + protowire.SizeBytes(len(a.str))
	case attrInteger:
		return protowire.SizeTag(fieldCeInteger) + protowire.SizeVarint(int32Varint(a.num))
	case attrTimestamp:
		return protowire.SizeTag(fieldCeTimestamp) + protowire.SizeBytes(a.timestampSize())
	}
	return 0
}

func (a *attr) appendValue(b []byte) []byte {
	switch a.kind {
	case attrString:
		b = protowire.AppendTag(b, fieldCeString, protowire.BytesType)
		return protowire.AppendBytes(b, a.str)
	case attrInteger:
		b = protowire.AppendTag(b, fieldCeInteger, protowire.VarintType)
		return protowire.AppendVarint(b, int32Varint(a.num))
	case attrTimestamp:
		b = protowire.AppendTag(b, fieldCeTimestamp, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(a.timestampSize()))
		if a.sec != 0 {
			b = protowire.AppendTag(b, fieldSeconds, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(a.sec))
		}
		if a.nanos != 0 {
			b = protowire.AppendTag(b, fieldNanos, protowire.VarintType)
			b = protowire.AppendVarint(b, int32Varint(a.nanos))
		}
	}
	return b
}
