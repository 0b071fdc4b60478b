package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/record"
)

// recordCommand runs the recording proxy until SIGINT, SIGTERM or
// --duration.
func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "record live Maestro traffic into a trace, as a gRPC proxy in front of both its ports",
		ArgsUsage: " ",
		UsageText: "cereplay record --out DIR --source-listen A --source-upstream B --broker-listen C --broker-upstream D\n\n" +
			"Examples:\n" +
			"   # sources connect to :9090 instead of Maestro's :8090, agents to :9091 instead of :8091\n" +
			"   cereplay record --out /data/rec1 --source-listen 127.0.0.1:9090 --source-upstream maestro:8090 \\\n" +
			"       --broker-listen 0.0.0.0:9091 --broker-upstream maestro:8091\n" +
			"   # Maestro with TLS and a token; the proxy serves TLS to its clients too\n" +
			"   cereplay record --out rec --source-listen :9090 --source-upstream maestro:8090 \\\n" +
			"       --ca-file ca.crt --upstream-token-file token --source-tls-cert tls.crt --source-tls-key tls.key",
		Description: "record serves io.cloudevents.v1.CloudEventService (Publish, Subscribe) on each listener\n" +
			"and forwards every call to its upstream, one upstream connection per client connection\n" +
			"and one upstream stream per Subscribe. Messages pass as raw bytes: what Maestro receives\n" +
			"is byte for byte what the client sent, and the other way; headers (subscription-id) go\n" +
			"back as soon as Maestro sends them, trailers, status codes and messages unchanged.\n" +
			"Every message of the four flows and every subscribe request is written to --out (a new\n" +
			"or empty folder) as a trace, with the Publish results (code and latency) as outcome\n" +
			"records and statuses linked to the delivery they answer (see format/FORMAT.md\n" +
			"\"Recordings\"); heartbeats are counted, not stored, unless --keep-heartbeats.\n\n" +
			"A segment is sealed and the manifest rewritten at least every --seal-every, so a\n" +
			"recorder killed at any time leaves a trace `cereplay verify` accepts, holding everything\n" +
			"up to the last seal. SIGINT or SIGTERM seal and finish. A disk error stops the recording,\n" +
			"never the proxy. Progress shows on a terminal; --metrics-listen serves Prometheus\n" +
			"/metrics. Listeners bind to 127.0.0.1 unless told otherwise. Exit status 1 when the\n" +
			"recording stopped early.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "trace `folder` to create (must not exist or be empty)"},
			&cli.StringFlag{Name: "source-listen", Usage: "`host:port` the sources connect to"},
			&cli.StringFlag{Name: "source-upstream", Usage: "Maestro's source gRPC `address` (its 8090)"},
			&cli.StringFlag{Name: "broker-listen", Usage: "`host:port` the agents connect to"},
			&cli.StringFlag{Name: "broker-upstream", Usage: "Maestro's broker gRPC `address` (its 8091)"},
			&cli.StringFlag{Name: "source-tls-cert", Usage: "PEM certificate `file` to serve the source listener with TLS 1.3"},
			&cli.StringFlag{Name: "source-tls-key", Usage: "PEM key `file` of --source-tls-cert"},
			&cli.StringFlag{Name: "source-client-ca", Usage: "PEM CA `file`: require source client certificates signed by it (mTLS)"},
			&cli.StringFlag{Name: "broker-tls-cert", Usage: "PEM certificate `file` to serve the broker listener with TLS 1.3"},
			&cli.StringFlag{Name: "broker-tls-key", Usage: "PEM key `file` of --broker-tls-cert"},
			&cli.StringFlag{Name: "broker-client-ca", Usage: "PEM CA `file`: require agent client certificates signed by it (mTLS)"},
			&cli.StringFlag{Name: "token-file", Usage: "require the bearer token in `file` from clients on both listeners"},
			&cli.StringFlag{Name: "ca-file", Usage: "CA bundle of Maestro's certificates (turns TLS to the upstreams on)"},
			&cli.StringFlag{Name: "cert-file", Usage: "client certificate for mTLS to the upstreams"},
			&cli.StringFlag{Name: "key-file", Usage: "client key for mTLS to the upstreams"},
			&cli.StringFlag{Name: "server-name", Usage: "name to check in Maestro's certificate"},
			&cli.StringFlag{Name: "upstream-token-file", Usage: "bearer token `file` sent to the upstreams on every call (needs TLS); without it and without --token-file, the clients' own authorization passes through"},
			&cli.IntFlag{Name: "upstream-conns", Usage: "share `N` upstream connections per port among all clients (0: one per client connection, as Maestro sees them without the proxy; for thousands of agents, 16 needs much less memory)"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "`host:port` serving Prometheus /metrics"},
			&cli.DurationFlag{Name: "seal-every", Value: record.DefaultSealEvery, Usage: "seal a segment and rewrite the manifest at least this often"},
			&cli.Int64Flag{Name: "segment-size", Value: format.DefaultSegmentSize, Usage: "seal a segment at this many `bytes` of records"},
			&cli.BoolFlag{Name: "keep-heartbeats", Usage: "store heartbeats too (they are always counted)"},
			&cli.DurationFlag{Name: "duration", Usage: "stop recording after this long (0: until interrupted)"},
			&cli.Int64Flag{Name: "memory-limit-mib", Value: 400, Usage: "soft memory limit of the Go runtime in MiB (GOMEMLIMIT wins when set; 0: none)"},
			&cli.BoolFlag{Name: "quiet", Usage: "no progress line"},
		},
		Action: runRecord,
	}
}

func runRecord(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("record: takes no arguments, got %d", c.NArg())
	}
	if c.String("out") == "" {
		return usagef("record: --out is required")
	}
	for _, pair := range [][2]string{{"source-tls-cert", "source-tls-key"}, {"broker-tls-cert", "broker-tls-key"}} {
		if (c.String(pair[0]) == "") != (c.String(pair[1]) == "") {
			return usagef("record: --%s and --%s go together", pair[0], pair[1])
		}
	}
	if c.Duration("seal-every") <= 0 || c.Duration("duration") < 0 {
		return usagef("record: --seal-every must be positive and --duration not negative")
	}
	cfg := record.Config{
		Out:          c.String("out"),
		SourceListen: c.String("source-listen"), SourceUpstream: c.String("source-upstream"),
		BrokerListen: c.String("broker-listen"), BrokerUpstream: c.String("broker-upstream"),
		SourceTLS: transport.ServerTLS{CertFile: c.String("source-tls-cert"), KeyFile: c.String("source-tls-key"), ClientCAFile: c.String("source-client-ca")},
		BrokerTLS: transport.ServerTLS{CertFile: c.String("broker-tls-cert"), KeyFile: c.String("broker-tls-key"), ClientCAFile: c.String("broker-client-ca")},
		Upstream: transport.ClientTLS{CAFile: c.String("ca-file"), CertFile: c.String("cert-file"), KeyFile: c.String("key-file"),
			ServerName: c.String("server-name"), TokenFile: c.String("upstream-token-file")},
		MetricsListen:  c.String("metrics-listen"),
		SealEvery:      c.Duration("seal-every"),
		SegmentSize:    c.Int64("segment-size"),
		KeepHeartbeats: c.Bool("keep-heartbeats"),
		UpstreamConns:  c.Int("upstream-conns"),
		Version:        version,
		Command:        strings.Join(os.Args, " "),
		// One line per failed call (clients see the same error) and one
		// when the recording stops.
		Log: slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)),
	}
	if f := c.String("token-file"); f != "" {
		tok, err := transport.ReadToken(f)
		if err != nil {
			return fmt.Errorf("record: --token-file: %w", err)
		}
		cfg.Token = tok
	}
	if mib := c.Int64("memory-limit-mib"); mib > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Thousands of streams make garbage in proportion: collect before
		// the heap doubles, as the replayer does.
		debug.SetMemoryLimit(mib << 20)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rec, err := record.Start(ctx, cfg)
	if err != nil {
		return err
	}
	out := c.App.Writer
	for _, l := range []struct{ name, addr, up string }{
		{"source", rec.SourceAddr(), cfg.SourceUpstream}, {"broker", rec.BrokerAddr(), cfg.BrokerUpstream}, {"metrics", rec.MetricsAddr(), ""},
	} {
		if l.addr != "" && l.up != "" {
			fmt.Fprintf(out, "%-8s %s -> %s\n", l.name, l.addr, l.up)
		} else if l.addr != "" {
			fmt.Fprintf(out, "%-8s %s\n", l.name, l.addr)
		}
	}
	var timeout <-chan time.Time
	if d := c.Duration("duration"); d > 0 {
		timeout = time.After(d)
	}
	live := liveLine(c.App.ErrWriter, c.Bool("quiet"))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-timeout:
			break wait
		case <-tick.C:
			live(progressLine(rec.Progress()))
		}
	}
	live("")
	sum, err := rec.Close()
	writeRecordSummary(out, sum)
	if err != nil {
		return fmt.Errorf("record: the recording stopped early: %w (the trace holds what came before)", err)
	}
	return nil
}

// liveLine returns a function that redraws one status line on a terminal
// (and does nothing otherwise, or when quiet); "" clears the line.
func liveLine(w io.Writer, quiet bool) func(string) {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return func(string) {}
	}
	return func(s string) { fmt.Fprintf(w, "\r\033[K%s", s) }
}

// progressLine is the live view: messages and bytes per flow, open
// streams, records written.
func progressLine(p record.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "recording %s:", p.Elapsed.Truncate(time.Second))
	for _, f := range sortedKeys(p.Messages) {
		fmt.Fprintf(&b, " %s %d (%s)", f, p.Messages[f], humanBytes(p.Bytes[f]))
	}
	fmt.Fprintf(&b, "; agents %d, sources %d, records %d", p.Agents, p.Sources, p.Records)
	if !p.Recording {
		b.WriteString("; RECORDING STOPPED")
	}
	return b.String()
}

// writeRecordSummary prints what the recording holds.
func writeRecordSummary(w io.Writer, s record.Summary) {
	fmt.Fprintf(w, "recorded %s in %s: %d records\n", s.Out, s.Duration.Truncate(time.Millisecond), s.Records)
	if s.Digest != "" {
		fmt.Fprintf(w, "digest   %s\n", s.Digest)
	}
	for _, f := range sortedKeys(s.Messages) {
		fmt.Fprintf(w, "  %-17s %8d messages %10s\n", f, s.Messages[f], humanBytes(s.Bytes[f]))
	}
	fmt.Fprintf(w, "heartbeats %d (not stored unless --keep-heartbeats), undecodable %d, statuses linked %d, unlinked %d\n",
		s.Heartbeats, s.Undecodable, s.Linked, s.Unlinked)
	if len(s.Errors) > 0 {
		fmt.Fprintf(w, "errors  ")
		for _, k := range sortedKeys(s.Errors) {
			fmt.Fprintf(w, " %s %d", k, s.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if s.Stopped != "" {
		fmt.Fprintf(w, "RECORDING STOPPED EARLY: %s\n", s.Stopped)
	}
}
