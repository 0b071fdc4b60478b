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
// attributes replaced, without decoding the rest of the event (the data, ~8 KB for a
// status, is copied as bytes). The entries of the replaced keys are
// removed and new entries appended; protobuf map entries may come in any
// order, so the result decodes to exactly the event maestro.Set* would
// give. Values are built by the caller (with the maestro setters), so this
// only knows the layout of cloudevent.proto.
func patchAttrs(dst, ce []byte, set map[string]*pbv1.CloudEventAttributeValue) ([]byte, error) {
	out := dst
	if out == nil {
		out = make([]byte, 0, len(ce)+64*len(set))
	}
	for b := ce; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errPatch, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", errPatch, num, protowire.ParseError(m))
		}
		field := b[:n+m]
		b = b[n+m:]
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
		out = append(out, field...)
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
		out = protowire.AppendTag(out, fieldAttributes, protowire.BytesType)
		out = protowire.AppendBytes(out, entry)
	}
	return out, nil
}

// attrValue returns the decoded value of one attribute (nil if absent).
func attrValue(ce []byte, key string) (*pbv1.CloudEventAttributeValue, error) {
	var found []byte
	for b := ce; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errPatch, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", errPatch, num, protowire.ParseError(m))
		}
		if num == fieldAttributes && typ == protowire.BytesType {
			entry, _ := protowire.ConsumeBytes(b[n : n+m])
			k, err := entryKey(entry)
			if err != nil {
				return nil, err
			}
			if k == key {
				found = entry // the last entry of a key wins
			}
		}
		b = b[n+m:]
	}
	if found == nil {
		return nil, nil
	}
	var val []byte
	for b := found; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		m := protowire.ConsumeFieldValue(num, typ, b[max(n, 0):])
		if n < 0 || m < 0 {
			return nil, fmt.Errorf("%w: attribute %s: bad map entry", errPatch, key)
		}
		if num == fieldEntryValue && typ == protowire.BytesType {
			val, _ = protowire.ConsumeBytes(b[n : n+m])
		}
		b = b[n+m:]
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
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", fmt.Errorf("%w: map entry: %v", errPatch, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return "", fmt.Errorf("%w: map entry field %d: %v", errPatch, num, protowire.ParseError(m))
		}
		if num == fieldEntryKey && typ == protowire.BytesType {
			k, _ := protowire.ConsumeBytes(b[n : n+m])
			key = string(k)
		}
		b = b[n+m:]
	}
	return key, nil
}
