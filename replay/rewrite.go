package replay

import (
	"bytes"
	"fmt"

	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// Rewrite names one kind of send-time change, for run.json: a diff of a
// run against its trace undoes exactly these and nothing else.
type Rewrite struct {
	Field string `json:"field"` // what changes, e.g. "ce-resourceversion"
	Flows string `json:"flows"` // which records, e.g. "agent>server status"
	Rule  string `json:"rule"`  // how the new value is made
}

// remapper maps resource ids under a run id (maestro.RunIDs) and applies
// the send-time rewrites; nil means no run id.
type remapper struct {
	ids *maestro.RunIDs
}

func newRemapper(runID string) *remapper {
	if runID == "" {
		return nil
	}
	return &remapper{ids: maestro.NewRunIDs(runID)}
}

// id returns the remapped resource id (the id itself without a run id).
func (m *remapper) id(rid string) string {
	if m == nil {
		return rid
	}
	return m.ids.ID(rid)
}

// rewrites lists the rewrites a replay with this remapper applies.
func (m *remapper) rewrites() []Rewrite {
	rw := []Rewrite{
		{Field: maestro.AttrResourceVersion, Flows: "agent>server " + "status.update_request",
			Rule: "the resourceversion the agent received with the spec the status answers"},
		{Field: maestro.AttrSequenceID, Flows: "agent>server " + "status.update_request",
			Rule: "a fresh node-1 snowflake, strictly increasing over the run"},
		{Field: "the whole event", Flows: "agent>server spec.resync_request",
			Rule: "the SDK agent's request built anew when it is sent (new id and time), listing the resource versions the agent holds then, under the ids on the wire"},
	}
	if m != nil {
		rule := fmt.Sprintf("UUIDv5(UUIDv5(OID, \"cereplay-run:%s\"), original id); the full map is in idmap.tsv", m.ids.RunID())
		rw = append(rw,
			Rewrite{Field: maestro.AttrResourceID, Flows: "all", Rule: rule},
			Rewrite{Field: maestro.AttrMetadata, Flows: "all",
				Rule: "every occurrence of the original resource id (metadata name and uid) replaced by the remapped id"})
	}
	return rw
}

// event rewrites one CloudEvent for sending, appending the result to dst.
// ce is not modified. version (when set) and seq (when not "") replace
// ce-resourceversion and ce-sequenceid; with a run id the resource id
// origRID and the metadata that carries it become wireRID (m.id(origRID),
// which the caller often holds already). The attributes are patched in
// the wire bytes (wire.PatchAttrs), the data is never decoded; without any
// change the bytes are copied as they are.
func (m *remapper) event(dst, ce []byte, origRID, wireRID string, version int64, hasVersion bool, seq string) ([]byte, error) {
	if m == nil && !hasVersion && seq == "" {
		return append(dst, ce...), nil
	}
	var setBuf [4]wire.Attr
	set := setBuf[:0] // the new attribute values
	if hasVersion {
		set = append(set, wire.ResourceVersionAttr(version))
	}
	if seq != "" {
		set = append(set, wire.Attr{Key: maestro.AttrSequenceID, Kind: wire.AttrString, Str: []byte(seq)})
	}
	if m != nil && origRID != "" {
		var v [2][]byte // the resource id, the metadata
		if err := wire.StringAttrs(ce, []string{maestro.AttrResourceID, maestro.AttrMetadata}, v[:]); err != nil {
			return nil, fmt.Errorf("replay: rewrite: %w", err)
		}
		if len(v[0]) > 0 {
			set = append(set, wire.Attr{Key: maestro.AttrResourceID, Kind: wire.AttrString, Str: []byte(wireRID)})
		}
		if md := v[1]; len(md) > 0 {
			set = append(set, wire.Attr{Key: maestro.AttrMetadata, Kind: wire.AttrString,
				Str: bytes.ReplaceAll(md, []byte(origRID), []byte(wireRID))})
		}
	}
	dst, err := wire.PatchAttrs(dst, ce, set)
	if err != nil {
		return nil, fmt.Errorf("replay: rewrite: %w", err)
	}
	return dst, nil
}
