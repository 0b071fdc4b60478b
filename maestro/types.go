// Package maestro is the only package in cereplay that knows Maestro's
// CloudEvents-over-gRPC protocol: event types, attribute keys, the builders
// and parsers of wire messages, snowflake sequence ids, resource-id
// derivation and the consumer REST client.
//
// The facts behind every constant are in the project's wire reference,
// PROTOCOL.md (sections 2 to 8; kept beside the repository, not in it; the
// golden messages it describes are in testdata/protocol); the names follow
// open-cluster-management.io/sdk-go.
package maestro

import (
	"strings"

	"github.com/cereplay/cereplay/maestro/wire"
)

// DataType is the CloudEvents data type of ManifestWork bundles, the only
// data type Maestro registers (sdk-go payload.ManifestBundleEventDataType).
const DataType = "io.open-cluster-management.works.v1alpha1.manifestbundles"

// Event types, as they appear in CloudEvent.type on the wire.
const (
	TypeSpecCreate          = DataType + ".spec.create_request"
	TypeSpecUpdate          = DataType + ".spec.update_request"
	TypeSpecDelete          = DataType + ".spec.delete_request"
	TypeSpecResyncRequest   = DataType + ".spec.resync_request"
	TypeSpecResyncResponse  = DataType + ".spec.resync_response"
	TypeStatusUpdate        = DataType + ".status.update_request"
	TypeStatusResyncRequest = DataType + ".status.resync_request"
	// TypeHeartbeat marks the server's application heartbeat on every
	// Subscribe stream; it carries no attributes and must be skipped by type.
	TypeHeartbeat = "io.open-cluster-management.cloudevents.heartbeat"
)

// Attribute keys in pbv1.CloudEvent.attributes. Extensions carry the "ce-"
// prefix; datacontenttype is the bare key "contenttype" (PROTOCOL.md §3).
// The keys the wire walk reads are declared there, once.
const (
	AttrContentType       = "contenttype"
	AttrTime              = "ce-time"
	AttrClusterName       = wire.AttrClusterName
	AttrResourceID        = wire.AttrResourceID
	AttrResourceVersion   = wire.AttrResourceVersion
	AttrDeletionTimestamp = wire.AttrDeletionTimestamp
	AttrOriginalSource    = wire.AttrOriginalSource
	AttrSequenceID        = wire.AttrSequenceID
	AttrStatusHash        = "ce-statushash"
	AttrMetadata          = "ce-metadata"
	AttrLogTracing        = "ce-logtracing"
)

// Fixed values of the protocol.
const (
	// SpecVersion is the CloudEvents spec version every event carries.
	SpecVersion = "1.0"
	// ContentTypeJSON is the datacontenttype of every event with data.
	ContentTypeJSON = "application/json"
	// BrokerSource is the source of spec events Maestro sends to agents and
	// the originalsource an agent's status must carry.
	BrokerSource = "maestro"
	// SubscriptionIDHeader is the response header both servers send first
	// on every Subscribe stream.
	SubscriptionIDHeader = "subscription-id"
	// AgentIDSuffix makes an agent's CloudEvents source from its cluster
	// name, by the Maestro agent chart's convention (<consumer>-work-agent).
	AgentIDSuffix = "-work-agent"
)

// Maestro's default ports (PROTOCOL.md §1).
const (
	DefaultSourcePort  = 8090
	DefaultBrokerPort  = 8091
	DefaultRESTPort    = 8000
	DefaultMetricsPort = 8080
	DefaultHealthPort  = 8083
)

// Event types are <DataType>.<subresource>.<action> (sdk-go
// types.CloudEventsType); these read the subresource, so that every
// package tells specs from statuses by one rule.
const (
	specPrefix   = DataType + ".spec."
	statusPrefix = DataType + ".status."
)

// IsSpec reports whether t is a spec event type (create, update, delete,
// resync): what sources publish and agents receive.
func IsSpec(t string) bool { return strings.HasPrefix(t, specPrefix) }

// IsStatus reports whether t is a status event type (update, resync):
// what agents publish and sources receive.
func IsStatus(t string) bool { return strings.HasPrefix(t, statusPrefix) }

// OtherType is ShortType's name for any event type the protocol does not
// define.
const OtherType = "other"

// ShortType names a known event type without its data type
// ("spec.create_request"), and any other type (a heartbeat, or what a
// client invents) OtherType, so that metric labels and tables built from
// it stay short and bounded whatever a peer sends.
func ShortType(t string) string {
	switch t {
	case TypeSpecCreate, TypeSpecUpdate, TypeSpecDelete,
		TypeSpecResyncRequest, TypeSpecResyncResponse,
		TypeStatusUpdate, TypeStatusResyncRequest:
		return t[len(DataType)+1:]
	default:
		return OtherType
	}
}
