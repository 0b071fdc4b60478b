package maestro

import "github.com/cereplay/cereplay/maestro/wire"

// Keys are the routing attributes of one CloudEvent: enough to index,
// route and rewrite traffic without decoding the event's data.
// ResourceVersion is valid only when HasResourceVersion is set; Deleting
// reports that ce-deletiontimestamp is present (the agent treats any spec
// event carrying it as a delete).
type Keys = wire.Keys

// ErrMalformed means bytes are not a well-formed protobuf message.
var ErrMalformed = wire.ErrMalformed

// ErrAttrType means an attribute holds a value the SDK reader would reject.
var ErrAttrType = wire.ErrAttrType

// ExtractKeys reads the routing attributes from the wire bytes of a
// pbv1.CloudEvent by walking its protobuf fields; the data field is skipped,
// never decoded, which makes it several times cheaper than proto.Unmarshal.
//
// It follows proto3 decoding rules (the last occurrence of a field or map
// key wins; a field with an unexpected wire type is an unknown field) and
// the SDK reader rules: string attributes are read only from ce_string;
// ce-resourceversion is a ce_integer or a decimal ce_string.
func ExtractKeys(ce []byte) (Keys, error) {
	return wire.Extract(ce)
}
