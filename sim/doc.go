// Package sim is an embedded, in-memory server that behaves on the wire like
// Maestro with the gRPC broker (open-cluster-management's ManifestWork
// delivery service), so traces can be replayed, tested and demonstrated
// without a database or a cluster.
//
// It serves the same five listeners as Maestro: the source gRPC port (:8090)
// where sources publish spec create/update/delete and status resync
// requests and subscribe to the status of their resources; the agent broker
// port (:8091), built on the SDK's own GRPCBroker, where agents subscribe to
// their cluster's spec events and publish status and spec resync requests;
// the consumers and resource-bundles REST API (:8000); Prometheus metrics
// (:8080); and the health check (:8083).
//
// What it checks, accepts, ignores and returns follows the project's wire
// reference, PROTOCOL.md (kept beside the repository, not in it; sections
// 6, 7 and 16, the behaviour
// observed on a real Maestro): error codes and messages, version and
// sequence-id rules, the re-encoding of spec events for agents (keys
// sorted, source "maestro", current resource version, metadata name set to
// the resource id) and the forwarding of status to sources with the spec
// added. Differences that remain are listed in the README.
package sim
