// Package transport is the one place that dials and serves Maestro's gRPC
// ports (io.cloudevents.v1.CloudEventService): client and server TLS and
// mTLS, bearer tokens (sent per call, checked by the server), the raw codec
// that passes message bytes through without re-encoding them, and the
// window, buffer and keepalive settings. replay, sim and record share it so
// that each side of the wire is set up the same way everywhere.
package transport
