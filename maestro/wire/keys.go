// Package wire is the one place that knows the protobuf layout of a
// CloudEvent (sdk-go cloudevent.proto): it walks the wire fields to read
// routing attributes, appends events, and patches attributes, all without
// decoding the event's data. It is separate from package maestro so that
// its fuzz targets link only protobuf: fuzzing a binary that also links
// the Kubernetes and SDK packages runs too slowly to find anything.
package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Attribute keys read here; package maestro exports them under the same
// names, with the rest of its attribute keys.
const (
	AttrClusterName       = "ce-clustername"
	AttrResourceID        = "ce-resourceid"
	AttrResourceVersion   = "ce-resourceversion"
	AttrDeletionTimestamp = "ce-deletiontimestamp"
	AttrOriginalSource    = "ce-originalsource"
	AttrSequenceID        = "ce-sequenceid"
)

// Keys are the routing attributes of one CloudEvent: enough to index,
// route and rewrite traffic without decoding the event's data.
type Keys struct {
	Type           string
	ID             string
	Source         string
	ClusterName    string
	ResourceID     string
	OriginalSource string
	SequenceID     string
	// ResourceVersion is valid only when HasResourceVersion is set.
	ResourceVersion    int64
	HasResourceVersion bool
	// Deleting reports that ce-deletiontimestamp is present: the agent
	// treats any spec event carrying it as a delete.
	Deleting bool
}

// ErrMalformed means bytes are not a well-formed protobuf message.
var ErrMalformed = errors.New("maestro: malformed protobuf")

// ErrAttrType means an attribute holds a value the SDK reader would reject.
var ErrAttrType = errors.New("maestro: attribute of unexpected type")

// Protobuf field numbers of pbv1.CloudEvent, its attribute map entries,
// pbv1.CloudEventAttributeValue (cloudevent.proto) and
// google.protobuf.Timestamp.
const (
	fieldID          = 1
	fieldSource      = 2
	fieldSpecVersion = 3
	fieldType        = 4
	fieldAttributes  = 5
	fieldBinaryData  = 6
	fieldTextData    = 7
	fieldProtoData   = 8

	fieldEntryKey   = 1
	fieldEntryValue = 2

	fieldCeBoolean   = 1
	fieldCeInteger   = 2
	fieldCeString    = 3
	fieldCeTimestamp = 7

	fieldSeconds = 1
	fieldNanos   = 2
)

// Wire types as Walk reports them.
const (
	WireVarint = int8(protowire.VarintType)
	WireBytes  = int8(protowire.BytesType)
)

// Extract reads the routing attributes from the wire bytes of a
// pbv1.CloudEvent by walking its protobuf fields; the data field is skipped,
// never decoded, which makes it several times cheaper than proto.Unmarshal.
//
// It follows proto3 decoding rules (the last occurrence of a field or map
// key wins; a field with an unexpected wire type is an unknown field) and
// the SDK reader rules: string attributes are read only from ce_string;
// ce-resourceversion is a ce_integer or a decimal ce_string.
func Extract(ce []byte) (Keys, error) {
	var k Keys
	var rv attrValue
	hasRV := false
	// Views into ce, made strings at the end. ClusterName and ResourceID
	// get an allocation each, as callers keep them (maps by resource,
	// a spec's cluster); the rest share one, as a message's keys are
	// read and dropped together. A replay reads the keys of three
	// messages per spec, and one allocation per key was seven each.
	var cluster, rid []byte
	var shared [5][]byte // ID, Source, Type, OriginalSource, SequenceID
	err := Walk(ce, func(num int32, typ int8, v []byte, _ uint64) error {
		if typ != WireBytes {
			return nil
		}
		switch num {
		case fieldID:
			shared[0] = v
		case fieldSource:
			shared[1] = v
		case fieldType:
			shared[2] = v
		case fieldAttributes:
			key, val, err := parseAttrEntry(v)
			if err != nil {
				return err
			}
			switch string(key) {
			case AttrClusterName:
				cluster = val.str()
			case AttrResourceID:
				rid = val.str()
			case AttrOriginalSource:
				shared[3] = val.str()
			case AttrSequenceID:
				shared[4] = val.str()
			case AttrResourceVersion:
				rv, hasRV = val, true
			case AttrDeletionTimestamp:
				k.Deleting = true
			}
		}
		return nil
	})
	if err != nil {
		return Keys{}, fmt.Errorf("maestro: extract keys: %w", err)
	}
	if hasRV {
		v, err := rv.integer()
		if err != nil {
			return Keys{}, fmt.Errorf("maestro: extract keys: %s: %w", AttrResourceVersion, err)
		}
		k.ResourceVersion, k.HasResourceVersion = v, true
	}
	k.ClusterName, k.ResourceID = string(cluster), string(rid)
	joinStrings([...]*string{&k.ID, &k.Source, &k.Type, &k.OriginalSource, &k.SequenceID}, shared)
	return k, nil
}

// joinStrings sets *dst[i] to string(src[i]) with one allocation for all.
func joinStrings(dst [5]*string, src [5][]byte) {
	n := 0
	for _, b := range src {
		n += len(b)
	}
	if n == 0 {
		return
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range src {
		sb.Write(b)
	}
	all := sb.String()
	for i, b := range src {
		*dst[i], all = all[:len(b)], all[len(b):]
	}
}

// attrValue is the set member of a CloudEventAttributeValue oneof.
type attrValue struct {
	field int32 // 0 when no member is set
	num   uint64
	bytes []byte
}

// str is the ce_string member, nil when another is set.
func (a attrValue) str() []byte {
	if a.field != fieldCeString {
		return nil
	}
	return a.bytes
}

func (a attrValue) integer() (int64, error) {
	switch a.field {
	case fieldCeInteger:
		return int64(int32(a.num)), nil
	case fieldCeString:
		v, err := strconv.ParseInt(string(a.bytes), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: ce_string %q is not a decimal integer", ErrAttrType, a.bytes)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("%w: want ce_integer or decimal ce_string, have field %d", ErrAttrType, a.field)
	}
}

// parseAttrEntry decodes one attributes map entry. Repeated value fields
// merge, so the last oneof member seen across all of them wins.
func parseAttrEntry(b []byte) (key []byte, val attrValue, err error) {
	err = Walk(b, func(num int32, typ int8, v []byte, _ uint64) error {
		if typ != WireBytes {
			return nil
		}
		switch num {
		case fieldEntryKey:
			key = v
		case fieldEntryValue:
			return Walk(v, func(num int32, typ int8, v []byte, n uint64) error {
				switch {
				case (num == fieldCeBoolean || num == fieldCeInteger) && typ == WireVarint:
					val = attrValue{field: num, num: n}
				case num >= fieldCeString && num <= fieldCeTimestamp && typ == WireBytes:
					val = attrValue{field: num, bytes: v}
				}
				return nil
			})
		}
		return nil
	})
	return key, val, err
}

// Walk calls fn for each field of a protobuf message: v holds the
// payload of length-delimited fields and n the value of varints. Other wire
// types are skipped. It stops at the first malformed field.
func Walk(b []byte, fn func(num int32, typ int8, v []byte, n uint64) error) error {
	for off := 0; off < len(b); {
		f, err := next(b, off)
		if err != nil {
			return err
		}
		if err := fn(int32(f.num), int8(f.typ), f.v, f.n); err != nil {
			return err
		}
		off += f.size
	}
	return nil
}

// field is one field of a protobuf message, as next reads it.
type field struct {
	num  protowire.Number
	typ  protowire.Type
	v    []byte // the payload of a length-delimited field
	n    uint64 // the value of a varint
	size int    // the whole field: tag and value
}

// next reads the field of msg that starts at off. Every walk over wire
// bytes in this package goes through it, so they agree on what is
// malformed and say where.
func next(msg []byte, off int) (field, error) {
	num, typ, tagLen := protowire.ConsumeTag(msg[off:])
	if tagLen < 0 {
		return field{}, fmt.Errorf("%w: field tag at offset %d: %w", ErrMalformed, off, protowire.ParseError(tagLen))
	}
	rest := msg[off+tagLen:]
	f := field{num: num, typ: typ}
	var valLen int
	switch typ {
	case protowire.BytesType:
		f.v, valLen = protowire.ConsumeBytes(rest)
	case protowire.VarintType:
		f.n, valLen = protowire.ConsumeVarint(rest)
	default:
		valLen = protowire.ConsumeFieldValue(num, typ, rest)
	}
	if valLen < 0 {
		return field{}, fmt.Errorf("%w: field %d at offset %d: %w", ErrMalformed, num, off, protowire.ParseError(valLen))
	}
	f.size = tagLen + valLen
	return f, nil
}

// fieldPublishEvent is PublishRequest.event (cloudevent.proto).
const fieldPublishEvent = 1

// AppendPublishHead appends the tag and length that make the wire bytes
// of a CloudEvent of eventLen bytes, appended after them, a
// PublishRequest: a caller can send the event's bytes without copying
// them into a new message.
func AppendPublishHead(dst []byte, eventLen int) []byte {
	dst = protowire.AppendTag(dst, fieldPublishEvent, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(eventLen))
}

// PublishHeadSize is the size of AppendPublishHead's bytes.
func PublishHeadSize(eventLen int) int {
	return protowire.SizeTag(fieldPublishEvent) + protowire.SizeVarint(uint64(eventLen))
}

// ErrNoEvent means a PublishRequest carries no event.
var ErrNoEvent = errors.New("maestro: publish request has no event")

// PublishRequestEvent returns the bytes of the CloudEvent inside the wire
// bytes of a PublishRequest (its field 1), without decoding the event.
func PublishRequestEvent(b []byte) ([]byte, error) {
	var event []byte
	found := false
	err := Walk(b, func(num int32, typ int8, v []byte, _ uint64) error {
		if num == fieldPublishEvent && typ == WireBytes {
			// Repeated occurrences of a message field merge; concatenating
			// their bytes gives the same merged message.
			if found {
				event = append(append([]byte(nil), event...), v...)
			} else {
				event = v
			}
			found = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("maestro: publish request: %w", err)
	}
	if !found {
		return nil, ErrNoEvent
	}
	return event, nil
}
