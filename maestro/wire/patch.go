package wire

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// PatchAttrs appends to dst the wire bytes of a CloudEvent with some
// attributes set, without decoding the rest of the event (the data, ~8 KB
// for a status, is copied as bytes). The entries of the keys in set are
// removed and set's entries appended, sorted by key (set is sorted in
// place; a key must not be in it twice); protobuf map entries may come in
// any order, so the result decodes to exactly the event that setting the
// values on the decoded event gives. The values are encoded here, as
// AppendEvent encodes them: a replay patches every status it sends, and
// building and marshalling protobuf messages for them cost more than the
// rest of the patch.
func PatchAttrs(dst, ce []byte, set []Attr) ([]byte, error) {
	slices.SortFunc(set, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
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
			if slices.ContainsFunc(set, func(a Attr) bool { return a.Key == string(key) }) {
				continue
			}
		}
		dst = append(dst, whole...)
	}
	for i := range set {
		dst = appendAttrEntry(dst, &set[i])
	}
	return dst, nil
}

// StringAttr returns the ce_string of attribute key of a CloudEvent, as
// the SDK reads string extensions: nil when the attribute is absent or
// holds another type (the last entry of a key wins, as in a map). It
// fails on malformed bytes on the way to the value.
func StringAttr(ce []byte, key string) ([]byte, error) {
	var v [1][]byte
	err := StringAttrs(ce, []string{key}, v[:])
	return v[0], err
}

// StringAttrs is StringAttr for several keys in one walk over the event:
// vals[i] gets the value of keys[i] (len(vals) must be len(keys)). A
// rewrite that reads two attributes walked the event twice, once per key.
func StringAttrs(ce []byte, keys []string, vals [][]byte) error {
	vals = vals[:len(keys)]
	clear(vals)
	for off := 0; off < len(ce); {
		f, err := next(ce, off)
		if err != nil {
			return err
		}
		off += f.size
		if f.num != fieldAttributes || f.typ != protowire.BytesType {
			continue
		}
		k, v, err := attrEntry(f.v)
		if err != nil {
			return err
		}
		for i, key := range keys {
			if string(k) == key {
				vals[i] = v // the last entry of a key wins
			}
		}
	}
	for i, v := range vals {
		if v == nil {
			continue
		}
		s, err := stringValue(v)
		if err != nil {
			return fmt.Errorf("attribute %s: %w", keys[i], err)
		}
		vals[i] = s
	}
	return nil
}

// ResourceVersionAttr is ce-resourceversion as the SDK writes an int64:
// a ce_integer. Versions beyond int32, which the SDK cannot send either,
// are written as a decimal ce_string.
func ResourceVersionAttr(v int64) Attr {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return Attr{Key: AttrResourceVersion, Kind: AttrString, Str: strconv.AppendInt(nil, v, 10)}
	}
	return Attr{Key: AttrResourceVersion, Kind: AttrInteger, Num: int32(v)}
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
