package wire

import (
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// PatchAttrs appends to dst the wire bytes of a CloudEvent with some
// attributes replaced, without decoding the rest of the event (the data,
// ~8 KB for a status, is copied as bytes). The entries of the replaced
// keys are removed and new entries appended; protobuf map entries may come
// in any order, so the result decodes to exactly the event that setting
// the values on the decoded event gives. The values are built by the
// caller (with package maestro's setters), so this knows only the layout.
func PatchAttrs(dst, ce []byte, set map[string]*pbv1.CloudEventAttributeValue) ([]byte, error) {
	for off := 0; off < len(ce); {
		f, err := next(ce, off)
		if err != nil {
			return nil, err
		}
		whole := ce[off : off+f.size]
		off += f.size
		if f.num == fieldAttributes && f.typ == protowire.BytesType {
			key, err := entryKey(f.v)
			if err != nil {
				return nil, err
			}
			if _, replaced := set[string(key)]; replaced {
				continue
			}
		}
		dst = append(dst, whole...)
	}
	for _, key := range slices.Sorted(maps.Keys(set)) {
		val, err := proto.Marshal(set[key])
		if err != nil {
			return nil, fmt.Errorf("maestro: attribute %s: %w", key, err)
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

// AttrValue returns the decoded value of attribute key of a CloudEvent
// (nil if absent; the last entry of a key wins, as in a map).
func AttrValue(ce []byte, key string) (*pbv1.CloudEventAttributeValue, error) {
	var found []byte
	for off := 0; off < len(ce); {
		f, err := next(ce, off)
		if err != nil {
			return nil, err
		}
		off += f.size
		if f.num == fieldAttributes && f.typ == protowire.BytesType {
			k, err := entryKey(f.v)
			if err != nil {
				return nil, err
			}
			if string(k) == key {
				found = f.v
			}
		}
	}
	if found == nil {
		return nil, nil
	}
	var val []byte
	for off := 0; off < len(found); {
		f, err := next(found, off)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: bad map entry: %w", key, err)
		}
		off += f.size
		if f.num == fieldEntryValue && f.typ == protowire.BytesType {
			val = f.v
		}
	}
	v := &pbv1.CloudEventAttributeValue{}
	if err := proto.Unmarshal(val, v); err != nil {
		return nil, fmt.Errorf("%w: attribute %s: %w", ErrMalformed, key, err)
	}
	return v, nil
}

// entryKey reads the key of an attributes map entry (the last key field
// wins).
func entryKey(entry []byte) ([]byte, error) {
	var key []byte
	for off := 0; off < len(entry); {
		f, err := next(entry, off)
		if err != nil {
			return nil, fmt.Errorf("attribute map entry: %w", err)
		}
		off += f.size
		if f.num == fieldEntryKey && f.typ == protowire.BytesType {
			key = f.v
		}
	}
	return key, nil
}
