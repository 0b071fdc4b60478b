package maestro

import (
	"crypto/sha1"
	"fmt"

	"github.com/bwmarrin/snowflake"
	"github.com/google/uuid"
)

// ManifestWorkGroupResource is the group-resource string the SDK source
// client mixes into every resource id (common.ManifestWorkGR.String()).
const ManifestWorkGroupResource = "manifestworks.work.open-cluster-management.io"

// SequenceNode is the snowflake node of the SDK agent codec. Maestro
// rejects a status whose sequence id has a different node than the one it
// stored, so every agent must use this node (PROTOCOL.md §6).
const SequenceNode = 1

// ResourceID derives the id of a ManifestWork exactly as the SDK source
// client does (clients/utils UID, called from ManifestWorkSourceClient.Create
// with the consumer as namespace). Maestro uses it verbatim as the resource
// bundle's primary key and as the work name on the agent.
func ResourceID(sourceID, consumer, workName string) string {
	name := sourceID + "-" + ManifestWorkGroupResource + "-" + consumer + "-" + workName
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)).String()
}

// AgentID is the CloudEvents source a Maestro agent uses for a cluster, by
// the agent chart's convention.
func AgentID(cluster string) string {
	return cluster + AgentIDSuffix
}

// SequenceIDs mints the status sequence ids of the agent codec: node-1
// snowflakes. Maestro stores a status only if its sequence id is strictly
// newer than the stored one, so a replayer needs a fresh, increasing id for
// every status it sends. Safe for concurrent use; ids are strictly
// increasing across goroutines.
type SequenceIDs struct {
	node *snowflake.Node
}

// sequenceNode is the process's one node-1 snowflake node, made while the
// package initializes: snowflake.NewNode rewrites the library's package
// variables that snowflake.ID's methods (Node, Time, Step) read without a
// lock, so a node made while another goroutine parses ids (sim comparing
// sequence ids) is a data race.
var sequenceNode = newSequenceNode()

func newSequenceNode() *snowflake.Node {
	node, err := snowflake.NewNode(SequenceNode)
	if err != nil {
		// Node 1 is always inside snowflake's default 10-bit node range.
		panic(fmt.Sprintf("maestro: snowflake node %d: %v", SequenceNode, err))
	}
	return node
}

// NewSequenceIDs returns a generator of node-1 snowflake ids. Every
// generator of the process shares one node, so ids are strictly
// increasing across generators too.
func NewSequenceIDs() *SequenceIDs {
	return &SequenceIDs{node: sequenceNode}
}

// Next returns the next sequence id as the decimal string the agent codec
// puts in ce-sequenceid.
func (s *SequenceIDs) Next() string {
	return s.node.Generate().String()
}

// RunIDs maps resource ids under a replay's run id, so that the same trace
// can be replayed into the same Maestro again without its ids colliding:
// new = UUIDv5(ns, original) with ns = UUIDv5(OID, "cereplay-run:"+runID).
// The map is deterministic, so a diff can undo it knowing only the run id.
// A nil *RunIDs maps every id to itself.
type RunIDs struct {
	runID string
	ns    uuid.UUID
}

// NewRunIDs returns the map of run id runID, or nil when runID is "".
func NewRunIDs(runID string) *RunIDs {
	if runID == "" {
		return nil
	}
	return &RunIDs{runID: runID, ns: uuid.NewSHA1(uuid.NameSpaceOID, []byte("cereplay-run:"+runID))}
}

// RunID is the run id the map is for.
func (m *RunIDs) RunID() string {
	if m == nil {
		return ""
	}
	return m.runID
}

// ID returns the remapped resource id (the id itself without a run id).
func (m *RunIDs) ID(rid string) string {
	if m == nil || rid == "" {
		return rid
	}
	// uuid.NewSHA1(m.ns, []byte(rid)), without the hash object, name copy
	// and sum it allocates: a replay maps an id at every send.
	var name [len(m.ns) + 64]byte
	sum := sha1.Sum(append(append(name[:0], m.ns[:]...), rid...))
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}
