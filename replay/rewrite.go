package replay

import (
	"bytes"
	"fmt"

	"github.com/google/uuid"

	"github.com/cereplay/cereplay/maestro"
)

// Rewrite names one kind of send-time change, for run.json: a diff of a
// run against its trace undoes exactly these and nothing else.
type Rewrite struct {
	Field string `json:"field"` // what changes, e.g. "ce-resourceversion"
	Flows string `json:"flows"` // which records, e.g. "agent>server status"
	Rule  string `json:"rule"`  // how the new value is made
}

// remapper maps resource ids under a run id: new = UUIDv5(ns, original)
// with ns = UUIDv5(OID, "cereplay-run:"+runID). The map is deterministic,
// so the same run id always gives the same ids, and a different run id
// gives ids that do not collide with an earlier replay in the same Maestro.
type remapper struct {
	runID string
	ns    uuid.UUID
}

func newRemapper(runID string) *remapper {
	if runID == "" {
		return nil
	}
	return &remapper{runID: runID, ns: uuid.NewSHA1(uuid.NameSpaceOID, []byte("cereplay-run:"+runID))}
}

// id returns the remapped resource id (the id itself without a run id).
func (m *remapper) id(rid string) string {
	if m == nil || rid == "" {
		return rid
	}
	return uuid.NewSHA1(m.ns, []byte(rid)).String()
}

// rewrites lists the rewrites a replay with this remapper applies.
func (m *remapper) rewrites() []Rewrite {
	rw := []Rewrite{
		{Field: maestro.AttrResourceVersion, Flows: "agent>server " + "status.update_request",
			Rule: "the resourceversion the agent received with the spec the status answers"},
		{Field: maestro.AttrSequenceID, Flows: "agent>server " + "status.update_request",
			Rule: "a fresh node-1 snowflake, strictly increasing over the run"},
	}
	if m != nil {
		rule := fmt.Sprintf("UUIDv5(UUIDv5(OID, \"cereplay-run:%s\"), original id); the full map is in idmap.tsv", m.runID)
		rw = append(rw,
			Rewrite{Field: maestro.AttrResourceID, Flows: "all", Rule: rule},
			Rewrite{Field: maestro.AttrMetadata, Flows: "all",
				Rule: "every occurrence of the original resource id (metadata name and uid) replaced by the remapped id"})
	}
	return rw
}

// event rewrites one CloudEvent for sending. ce is not modified. version
// (when set) and seq (when not "") replace ce-resourceversion and
// ce-sequenceid; with a run id the resource id and the metadata that
// carries it are remapped. Without any change the bytes go out as they are,
// never re-encoded.
func (m *remapper) event(ce []byte, origRID string, version int64, hasVersion bool, seq string) ([]byte, error) {
	if m == nil && !hasVersion && seq == "" {
		return ce, nil
	}
	ev, err := maestro.Unmarshal(ce)
	if err != nil {
		return nil, err
	}
	if hasVersion {
		maestro.SetResourceVersion(ev, version)
	}
	if seq != "" {
		maestro.SetSequenceID(ev, seq)
	}
	if m != nil && origRID != "" {
		newRID := m.id(origRID)
		if maestro.StringAttr(ev, maestro.AttrResourceID) != "" {
			maestro.SetStringAttr(ev, maestro.AttrResourceID, newRID)
		}
		if md := maestro.StringAttr(ev, maestro.AttrMetadata); md != "" {
			maestro.SetStringAttr(ev, maestro.AttrMetadata,
				string(bytes.ReplaceAll([]byte(md), []byte(origRID), []byte(newRID))))
		}
	}
	return maestro.Marshal(ev)
}
