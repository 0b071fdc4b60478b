package replay

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// Field numbers of pbv1.CloudEvent and of its attributes map entries
// (sdk-go cloudevent.proto).
const (
	fieldAttributes = 5
	fieldEntryKey   = 1
	fieldEntryValue = 2
)

var errPatch = errors.New("replay: malformed cloudevent")

// patchAttrs appends to dst the wire bytes of a CloudEvent with some
// attributes replaced, without decoding the rest of the event (the data,
// ~8 KB for a status, is copied as bytes). The entries of the replaced
// keys are removed and new entries appended; protobuf map entries may come
// in any order, so the result decodes to exactly the event maestro.Set* would
// give. Values are built by the caller (with the maestro setters), so this
// only knows the layout of cloudevent.proto.
func patchAttrs(dst, ce []byte, set map[string]*pbv1.CloudEventAttributeValue) ([]byte, error) {
	for b := ce; len(b) > 0; {
		num, typ, n, size, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errPatch, err)
		}
		field := b[:size]
		b = b[size:]
		if num == fieldAttributes && typ == protowire.BytesType {
			entry, _ := protowire.ConsumeBytes(field[n:])
			key, err := entryKey(entry)
			if err != nil {
				return nil, err
			}
			if _, replaced := set[key]; replaced {
				continue
			}
		}
		dst = append(dst, field...)
	}
	for _, key := range sortedKeys(set) {
		val, err := proto.Marshal(set[key])
		if err != nil {
			return nil, fmt.Errorf("replay: attribute %s: %w", key, err)
		}
		entry := protowire.AppendTag(nil, fieldEntryKey, protowire.BytesType)
		entry = protowire.AppendString(entry, key)
		entry = protowire.AppendTag(entry, fieldEntryValue, protowire.BytesType)
		entry = protowire.AppendBytes(entry, val)
		dst = protowire.AppendTag(dst, fieldAttributes, protowire.BytesType)
		dst = protowire.AppendBytes(dst, entry)
	}
	return dst, nil
}

// attrValue returns the decoded value of one attribute (nil if absent).
func attrValue(ce []byte, key string) (*pbv1.CloudEventAttributeValue, error) {
	var found []byte
	for b := ce; len(b) > 0; {
		num, typ, n, size, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errPatch, err)
		}
		if num == fieldAttributes && typ == protowire.BytesType {
			entry, _ := protowire.ConsumeBytes(b[n:size])
			k, err := entryKey(entry)
			if err != nil {
				return nil, err
			}
			if k == key {
				found = entry // the last entry of a key wins
			}
		}
		b = b[size:]
	}
	if found == nil {
		return nil, nil
	}
	var val []byte
	for b := found; len(b) > 0; {
		num, typ, n, size, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("%w: attribute %s: bad map entry", errPatch, key)
		}
		if num == fieldEntryValue && typ == protowire.BytesType {
			val, _ = protowire.ConsumeBytes(b[n:size])
		}
		b = b[size:]
	}
	v := &pbv1.CloudEventAttributeValue{}
	if err := proto.Unmarshal(val, v); err != nil {
		return nil, fmt.Errorf("%w: attribute %s: %v", errPatch, key, err)
	}
	return v, nil
}

// entryKey reads the key of an attributes map entry.
func entryKey(entry []byte) (string, error) {
	key := ""
	for b := entry; len(b) > 0; {
		num, typ, n, size, err := nextField(b)
		if err != nil {
			return "", fmt.Errorf("%w: map entry: %v", errPatch, err)
		}
		if num == fieldEntryKey && typ == protowire.BytesType {
			k, _ := protowire.ConsumeBytes(b[n:size])
			key = string(k)
		}
		b = b[size:]
	}
	return key, nil
}

// nextField measures the first field of b: its number and type, the length
// of its tag and of the whole field (tag and value). The three walks over
// wire bytes above share it.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, tagLen, size int, err error) {
	num, typ, tagLen = protowire.ConsumeTag(b)
	if tagLen < 0 {
		return 0, 0, 0, 0, protowire.ParseError(tagLen)
	}
	m := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
	if m < 0 {
		return 0, 0, 0, 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
	}
	return num, typ, tagLen, tagLen + m, nil
}
