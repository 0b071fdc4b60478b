// Package record captures live Maestro traffic into a replayable trace. It
// is a gRPC proxy for both of Maestro's ports (io.cloudevents.v1
// CloudEventService: Publish and Subscribe) that passes every message
// through as raw bytes, headers, trailers and status unchanged, and writes
// each message of the four flows, plus the subscribe requests, through
// format.Writer.
//
// How a recording stays replayable (FORMAT.md "Recordings" is the
// reference):
//
//   - Each record's offset is when the proxy saw the message. Statuses are
//     linked, as generated traces link them, by a trigger: a spec delivered
//     to an agent (server>agent) triggers on the source's Publish of the
//     same resource id; an agent's status (agent>server) triggers on the
//     last delivery of its resource id to its cluster whose version it
//     reports, with the delay between them; a status forwarded to a source
//     (server>source) triggers on the agent's status with the same sequence
//     id. A message with no match is kept without a trigger and replayed at
//     its own offset.
//   - Each Publish is followed, when its call ends, by an outcome record
//     (sent or failed, gRPC code, latency) naming it.
//   - Heartbeats are counted, not stored, unless Config.KeepHeartbeats.
//
// Recording never takes traffic down: a disk error, or a writer that falls
// behind, stops the recording (the trace is valid up to the last
// checkpoint) while the proxy goes on. Memory is bounded: messages are
// forwarded one at a time, and the queue to the writer has a byte budget.
package record
