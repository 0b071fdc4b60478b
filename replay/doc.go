// Package replay plays a cereplay trace against a Maestro (or the embedded
// sim): it acts as every source and every agent of the trace, sends each
// event on a schedule computed from one start instant, rewrites at send time
// only what Maestro requires to be fresh, and accounts for every record with
// exactly one outcome.
//
// The pieces, each in its own file:
//
//   - package pace (not here): the Pacer that turns trace offsets into due
//     times and the Clock that waits for them.
//   - shard.go: which clusters a shard plays.
//   - conn.go: the run's connections, shared by agents and sources, and
//     the Publish and Subscribe calls, which send trace bytes through
//     internal/transport's raw codec without re-encoding them.
//   - agent.go, source.go: the simulated agents and sources.
//   - tracker.go: matching of sends to deliveries and status replies.
//   - rewrite.go: the send-time rewrites (resource version, sequence id,
//     run-id remapping).
//   - accounting.go: every count and latency of a run, each fed to the
//     Prometheus metrics and the summary by one method.
//   - stats.go, metrics.go, results.go: histograms, Prometheus metrics and
//     the run folder (run.json, outcomes, summary.json).
//   - observe.go: the timeline and the scraping of the targets' metrics.
//   - health.go: stream health, giving up on a dead or stalled target.
//   - multiply.go: --clusters-multiplier, every cluster played K times.
//   - config.go, run.go: Config and Run, which wires everything together.
//   - play.go: the connect phase, the loop that reads and prepares the
//     trace, and the pacer goroutine that only releases sends on time.
//   - send.go: the one send path (release) of spec events, agent events
//     and status replies: in-flight slots, lateness, --late-drop, Publish.
//   - dispatch.go: the status replies waiting for their due time.
//   - stream.go: keeping agents' and sources' Subscribe streams open.
//   - consumers.go: consumer creation through REST.
//
// Trigger semantics: a status record's Trigger is the spec record it
// answers (or the server>agent record of that spec's delivery) and its
// Delay is how long the agent waited after the spec arrived. The replay
// sends it at (actual delivery time) + Delay/speed, or at once with Max.
package replay
