package wire

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Names Parts gives the top-level fields of a CloudEvent (the CloudEvents
// attribute names); an attribute is named by its key ("ce-time").
var (
	PartID          = []byte("id")
	PartSource      = []byte("source")
	PartSpecVersion = []byte("specversion")
	PartType        = []byte("type")
	PartData        = []byte("data")
)

var (
	partTextData  = []byte("text_data")
	partProtoData = []byte("proto_data")
)

// Parts calls fn for each part of a CloudEvent: every top-level field by
// its name, with its bytes (a string's or the binary data's), and every
// attribute by its key (attr set), with its CloudEventAttributeValue
// message as bytes. Nothing is decoded, so comparing two events part by
// part costs about a walk. A field the schema does not define is named
// "field<N>"; varints of such fields are skipped.
func Parts(ce []byte, fn func(name []byte, attr bool, v []byte) error) error {
	for off := 0; off < len(ce); {
		f, err := next(ce, off)
		if err != nil {
			return err
		}
		off += f.size
		if f.typ != protowire.BytesType {
			continue
		}
		var name []byte
		attr := false
		switch f.num {
		case fieldID:
			name = PartID
		case fieldSource:
			name = PartSource
		case fieldSpecVersion:
			name = PartSpecVersion
		case fieldType:
			name = PartType
		case fieldAttributes:
			if name, f.v, err = attrEntry(f.v); err != nil {
				return err
			}
			attr = true
		case fieldBinaryData:
			name = PartData
		case fieldTextData:
			name = partTextData
		case fieldProtoData:
			name = partProtoData
		default:
			name = []byte("field" + strconv.Itoa(int(f.num)))
		}
		if err := fn(name, attr, f.v); err != nil {
			return err
		}
	}
	return nil
}

// attrEntry splits an attributes map entry into its key and the bytes of
// its value message (the last of each wins).
func attrEntry(entry []byte) (key, val []byte, err error) {
	for off := 0; off < len(entry); {
		f, err := next(entry, off)
		if err != nil {
			return nil, nil, fmt.Errorf("attribute map entry: %w", err)
		}
		off += f.size
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fieldEntryKey:
			key = f.v
		case fieldEntryValue:
			val = f.v
		}
	}
	return key, val, nil
}

// StringValue returns the ce_string of a CloudEventAttributeValue message
// (nil when it holds another type, or is malformed), as the SDK reads
// string extensions.
func StringValue(val []byte) []byte {
	s, _ := stringValue(val)
	return s
}

// stringValue is StringValue, with the error that stopped it.
func stringValue(val []byte) ([]byte, error) {
	var s []byte
	err := Walk(val, func(num int32, typ int8, v []byte, _ uint64) error {
		switch {
		case num == fieldCeString && typ == WireBytes:
			s = v
		case num >= fieldCeBoolean && num <= fieldCeTimestamp:
			s = nil // another member of the oneof, set later, wins
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
