package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/sim"
)

// simCommand runs sim, the embedded Maestro-compatible server, until
// SIGINT or SIGTERM.
func simCommand() *cli.Command {
	d := sim.DefaultConfig()
	return &cli.Command{
		Name:      "sim",
		Usage:     "run an in-memory server that behaves on the wire like Maestro",
		ArgsUsage: " ",
		Description: "sim serves Maestro's five listeners - source gRPC, agent gRPC broker, consumers REST API,\n" +
			"Prometheus metrics and health check - with Maestro's checks, error codes, version and\n" +
			"sequence rules, heartbeats and status forwarding, keeping all state in memory. It is the\n" +
			"target of tests, CI and `make demo`; it starts in well under a second and needs no database.\n\n" +
			"It prints one line per listener (name and address) when ready, then runs until\n" +
			"interrupted. A port of 0 picks a free port. Every listener binds to 127.0.0.1 unless told\n" +
			"otherwise; an empty address turns that listener off (not all five). Unless GOGC or GOMEMLIMIT is set,\n" +
			"it runs with GOGC=400 and a 2 GiB soft memory limit (fewer collections of its many streams).\n\n" +
			"Examples:\n" +
			"   cereplay sim\n" +
			"   cereplay sim --consumers 3000 --publish-latency 2ms\n" +
			"   cereplay sim --source-listen 127.0.0.1:0 --broker-listen 127.0.0.1:0 --rest-listen 127.0.0.1:0\n" +
			"   cereplay sim --broker-tls-cert tls.crt --broker-tls-key tls.key --broker-client-ca ca.crt\n" +
			"   cereplay sim --token-file token.txt",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source-listen", Value: d.SourceListen, Usage: "`host:port` of the source gRPC port (Maestro 8090)"},
			&cli.StringFlag{Name: "broker-listen", Value: d.BrokerListen, Usage: "`host:port` of the agent gRPC broker (Maestro 8091)"},
			&cli.StringFlag{Name: "rest-listen", Value: d.RESTListen, Usage: "`host:port` of the consumers and resource-bundles REST API (Maestro 8000)"},
			&cli.StringFlag{Name: "metrics-listen", Value: d.MetricsListen, Usage: "`host:port` of Prometheus /metrics (Maestro 8080)"},
			&cli.StringFlag{Name: "health-listen", Value: d.HealthListen, Usage: "`host:port` of /healthcheck (Maestro 8083)"},
			&cli.DurationFlag{Name: "heartbeat-interval", Value: d.HeartbeatInterval, Usage: "heartbeat `period` on every Subscribe stream; 0 turns heartbeats off (not negative)"},
			&cli.DurationFlag{Name: "publish-latency", Usage: "processing `delay` added to every Publish, to model Maestro's database (a real one answers in about 2-3ms)"},
			&cli.IntFlag{Name: "consumers", Usage: "create consumers maestro-cluster-1 to maestro-cluster-`N` at start"},
			&cli.StringFlag{Name: "source-tls-cert", Usage: "PEM certificate `file` to serve the source port with TLS 1.3"},
			&cli.StringFlag{Name: "source-tls-key", Usage: "PEM key `file` of --source-tls-cert"},
			&cli.StringFlag{Name: "source-client-ca", Usage: "PEM CA `file`: require source client certificates signed by it (mTLS)"},
			&cli.StringFlag{Name: "broker-tls-cert", Usage: "PEM certificate `file` to serve the broker port with TLS 1.3"},
			&cli.StringFlag{Name: "broker-tls-key", Usage: "PEM key `file` of --broker-tls-cert"},
			&cli.StringFlag{Name: "broker-client-ca", Usage: "PEM CA `file`: require agent client certificates signed by it (mTLS)"},
			&cli.StringFlag{Name: "token-file", Usage: "require the bearer token in `file` on both gRPC ports (authorization metadata)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log server and SDK messages to stderr"},
		},
		Action: runSim,
	}
}

func runSim(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("sim: takes no arguments, got %d", c.NArg())
	}
	cfg := sim.Config{
		SourceListen:      c.String("source-listen"),
		BrokerListen:      c.String("broker-listen"),
		RESTListen:        c.String("rest-listen"),
		MetricsListen:     c.String("metrics-listen"),
		HealthListen:      c.String("health-listen"),
		HeartbeatInterval: c.Duration("heartbeat-interval"),
		PublishLatency:    c.Duration("publish-latency"),
		SourceTLS:         sim.TLSFiles{CertFile: c.String("source-tls-cert"), KeyFile: c.String("source-tls-key"), ClientCAFile: c.String("source-client-ca")},
		BrokerTLS:         sim.TLSFiles{CertFile: c.String("broker-tls-cert"), KeyFile: c.String("broker-tls-key"), ClientCAFile: c.String("broker-client-ca")},
	}
	for _, name := range []string{"source-listen", "broker-listen", "rest-listen", "metrics-listen", "health-listen"} {
		if addr := c.String(name); addr != "" {
			if _, port, err := net.SplitHostPort(addr); err != nil {
				return usagef("sim: --%s %q: want host:port (port 0 picks a free one): %v", name, addr, err)
			} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return usagef("sim: --%s %q: port %q is not a number from 0 to 65535", name, addr, port)
			}
		}
	}
	for _, pair := range [][2]string{{"source-tls-cert", "source-tls-key"}, {"broker-tls-cert", "broker-tls-key"}} {
		if (c.String(pair[0]) == "") != (c.String(pair[1]) == "") {
			return usagef("sim: --%s and --%s go together", pair[0], pair[1])
		}
	}
	if f := c.String("token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("sim: --token-file: %w", err)
		}
		if cfg.BearerToken = strings.TrimSpace(string(b)); cfg.BearerToken == "" {
			return fmt.Errorf("sim: --token-file %s is empty", f)
		}
	}
	if cfg.PublishLatency < 0 {
		return usagef("sim: --publish-latency %v is negative", cfg.PublishLatency)
	}
	if cfg.HeartbeatInterval < 0 {
		return usagef("sim: --heartbeat-interval %v is negative (0 turns heartbeats off)", cfg.HeartbeatInterval)
	}
	if cfg.SourceListen == "" && cfg.BrokerListen == "" && cfg.RESTListen == "" && cfg.MetricsListen == "" && cfg.HealthListen == "" {
		return usagef("sim: every --*-listen address is empty: nothing to serve")
	}
	n := c.Int("consumers")
	if n < 0 {
		return usagef("sim: --consumers %d is negative", n)
	}
	var log *slog.Logger // nil: quiet; the SDK's messages follow it too
	if c.Bool("verbose") {
		log = slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	}
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// sim serves thousands of streams, so every garbage collection
		// scans thousands of goroutine stacks: collecting less often cuts
		// its CPU per event by about a third, for a larger heap that the
		// soft limit keeps below 2 GiB. GOGC or GOMEMLIMIT override.
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(2 << 30)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := sim.StartWithLogger(ctx, cfg, log)
	if errors.Is(err, sim.ErrConfig) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	for i := 1; i <= n; i++ {
		if err := srv.CreateConsumer(fmt.Sprintf("maestro-cluster-%d", i)); err != nil {
			return err
		}
	}
	out := c.App.Writer
	for _, l := range []struct{ name, addr string }{
		{"source", srv.SourceAddr()}, {"broker", srv.BrokerAddr()}, {"rest", srv.RESTURL()},
		{"metrics", srv.MetricsAddr()}, {"health", srv.HealthAddr()},
	} {
		if l.addr != "" {
			fmt.Fprintf(out, "%-8s %s\n", l.name, l.addr)
		}
	}
	<-ctx.Done()
	return srv.Close()
}
