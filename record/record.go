package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

// Config says where the recorder listens, where it forwards and where it
// writes. Each port is recorded when both its listen and upstream
// addresses are set.
type Config struct {
	// Out is the trace folder; it must not exist or be empty.
	Out string
	// SourceListen and SourceUpstream: the source port (Maestro's 8090).
	SourceListen, SourceUpstream string
	// BrokerListen and BrokerUpstream: the agent broker port (8091).
	BrokerListen, BrokerUpstream string
	// SourceTLS and BrokerTLS serve the ports with TLS (mTLS with a client
	// CA), as sim does.
	SourceTLS, BrokerTLS transport.ServerTLS
	// Token, when set, is required from clients on both ports as
	// "authorization: Bearer <token>". Never logged.
	Token string
	// Upstream secures the connections to Maestro (TLS, mTLS, its own
	// bearer token), as replay's. With neither Token nor an upstream token,
	// the clients' authorization metadata is passed through.
	Upstream transport.ClientTLS
	// MetricsListen serves Prometheus /metrics when set.
	MetricsListen string
	// SealEvery is the longest time between checkpoints (segment sealed,
	// manifest rewritten); 0 means 1s. SegmentSize seals a segment sooner;
	// 0 means format.DefaultSegmentSize.
	SealEvery   time.Duration
	SegmentSize int64
	// QueueBytes bounds the messages waiting for the trace writer; past
	// it the recording stops (the proxy goes on). 0 means 64 MiB.
	QueueBytes int64
	// UpstreamConns, when above 0, makes every client connection of a
	// port share one of this many upstream connections (with a source
	// connection's large windows), instead of one upstream connection per
	// client connection: Maestro then sees fewer connections than without
	// the proxy, and the recorder needs much less memory for thousands of
	// agents.
	UpstreamConns int
	// KeepHeartbeats stores heartbeats; by default they are only counted.
	KeepHeartbeats bool
	// Version and Command go into the manifest's provenance.
	Version, Command string
	// Log receives one line per failed call and the recording's stop
	// (nil discards them).
	Log *slog.Logger
}

// Defaults of Config's zero values.
const (
	DefaultSealEvery  = time.Second
	DefaultQueueBytes = 64 << 20
	// maxMessage is the largest message the proxy accepts from a client:
	// the upstream applies its own limit and its error goes back as is.
	maxMessage = format.MaxRecordSize
)

// Tool is the provenance tool of a recording.
const Tool = "cereplay record"

// Recorder is a running recording proxy.
type Recorder struct {
	cfg   Config
	log   *slog.Logger
	stats *stats
	trace *trace
	start time.Time

	ports   []*port
	servers []*grpc.Server
	http    *http.Server
	addrs   map[string]string
	wg      sync.WaitGroup

	closeOnce sync.Once
	summary   Summary
	closeErr  error
}

// Start checks the configuration, creates the trace, binds every listener
// and serves in the background. The recording ends with Close (or when
// ctx ends, then Close still returns the summary).
func Start(ctx context.Context, cfg Config) (*Recorder, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.SealEvery == 0 {
		cfg.SealEvery = DefaultSealEvery
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg, token, err := cfg.Upstream.Load()
	if err != nil {
		return nil, fmt.Errorf("record: upstream: %w", err)
	}
	sec := transport.SecurityOptions(tlsCfg, token)
	r := &Recorder{cfg: cfg, log: log, stats: newStats(), addrs: map[string]string{}}
	type side struct {
		name, listen, upstream string
		tls                    transport.ServerTLS
		conn                   transport.Conn
		publish, stream, sub   format.Flow
	}
	var lis []net.Listener
	fail := func(err error) (*Recorder, error) {
		for _, l := range lis {
			l.Close()
		}
		return nil, err
	}
	var upstreams []string
	var opts [][]grpc.ServerOption
	for _, s := range []side{
		{"source", cfg.SourceListen, cfg.SourceUpstream, cfg.SourceTLS, transport.SourceConn, format.FlowSourceToServer, format.FlowServerToSource, format.FlowSourceSubscribe},
		{"broker", cfg.BrokerListen, cfg.BrokerUpstream, cfg.BrokerTLS, transport.AgentConn, format.FlowAgentToServer, format.FlowServerToAgent, format.FlowAgentSubscribe},
	} {
		if s.listen == "" {
			continue
		}
		conn := s.conn
		if cfg.UpstreamConns > 0 {
			conn = transport.SourceConn // many streams on each
		}
		dial := transport.ConnOptions(sec, time.Second, 5*time.Second, conn)
		// Refuse an upstream that does not parse now, not at the first call.
		if cc, err := grpc.NewClient(s.upstream, dial...); err != nil {
			return fail(errUpstream(s.name, s.upstream, err))
		} else {
			cc.Close()
		}
		o, err := transport.ServerOptions(maxMessage, s.tls)
		if err != nil {
			return fail(fmt.Errorf("record: %s port: %w", s.name, err))
		}
		p := &port{name: s.name, publish: s.publish, stream: s.stream, sub: s.sub, upstream: s.upstream, dial: dial,
			forwardAuth: cfg.Token == "" && token == "", rec: r, conns: map[*upConn]struct{}{}}
		for range cfg.UpstreamConns {
			p.shared = append(p.shared, &upConn{})
		}
		auth := transport.Bearer{Token: cfg.Token, Name: "record"}
		o = append(o, transport.RawServer(), grpc.UnknownServiceHandler(p.handler), grpc.StatsHandler(p),
			grpc.ChainStreamInterceptor(auth.Stream))
		if s.name == "source" {
			o = append(o, transport.SourcePortOptions()...)
		} else {
			// Thousands of agent connections each read a few KiB at a
			// time: gRPC's 32 KiB read buffer per connection would be
			// most of the recorder's memory.
			o = append(o, grpc.ReadBufferSize(4<<10))
		}
		l, err := net.Listen("tcp", s.listen)
		if err != nil {
			return fail(fmt.Errorf("record: %s listener on %s: %w", s.name, s.listen, err))
		}
		lis = append(lis, l)
		r.addrs[s.name] = l.Addr().String()
		r.ports = append(r.ports, p)
		opts = append(opts, o)
		upstreams = append(upstreams, s.name+"="+s.upstream)
	}
	var metricsLis net.Listener
	if cfg.MetricsListen != "" {
		l, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fail(fmt.Errorf("record: metrics listener on %s: %w", cfg.MetricsListen, err))
		}
		lis = append(lis, l)
		metricsLis = l
		r.addrs["metrics"] = l.Addr().String()
	}
	w, err := format.Create(cfg.Out, format.WriterOptions{SegmentSize: cfg.SegmentSize, Checkpoints: true})
	if err != nil {
		return fail(fmt.Errorf("record: %w", err))
	}
	prov := format.Provenance{Tool: Tool, Version: cfg.Version, Command: cfg.Command, Upstreams: upstreams,
		Params: map[string]string{"seal_every": cfg.SealEvery.String(), "keep_heartbeats": fmt.Sprint(cfg.KeepHeartbeats)}}
	r.trace = newTrace(w, prov, cfg.SealEvery, cfg.QueueBytes, func(err error) {
		r.log.Error("recording stopped; the proxy goes on", "err", err)
	})
	r.start = r.trace.start
	r.stats.recording = func() bool { return r.trace.err() == nil && !r.trace.isStopped() }
	r.stats.records = r.trace.written.Load

	for i, p := range r.ports {
		g := grpc.NewServer(opts[i]...)
		r.servers = append(r.servers, g)
		r.serve(func() error {
			if err := g.Serve(lis[i]); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil
		}, p.name)
	}
	if metricsLis != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(r.stats)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		r.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		r.serve(func() error {
			if err := r.http.Serve(metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, "metrics")
	}
	go func() {
		<-ctx.Done()
		r.Close()
	}()
	return r, nil
}

func (r *Recorder) serve(f func() error, name string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := f(); err != nil {
			r.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
}

func (c *Config) validate() error {
	if c.Out == "" {
		return errors.New("record: no output folder (--out)")
	}
	if ents, err := os.ReadDir(c.Out); err == nil && len(ents) > 0 {
		return fmt.Errorf("record: --out %s exists and is not empty: nothing was overwritten; pick a new folder", c.Out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("record: --out %s: %w", c.Out, err)
	}
	n := 0
	for _, p := range []struct{ name, listen, upstream string }{
		{"source", c.SourceListen, c.SourceUpstream}, {"broker", c.BrokerListen, c.BrokerUpstream},
	} {
		if (p.listen == "") != (p.upstream == "") {
			return fmt.Errorf("record: --%s-listen and --%s-upstream go together", p.name, p.name)
		}
		if p.listen != "" {
			n++
		}
	}
	if n == 0 {
		return errors.New("record: nothing to record: set --source-listen and --source-upstream, --broker-listen and --broker-upstream, or both")
	}
	if c.SealEvery < 0 || c.QueueBytes < 0 || c.UpstreamConns < 0 {
		return errors.New("record: --seal-every, --upstream-conns and the queue size must not be negative")
	}
	return nil
}

// SourceAddr, BrokerAddr and MetricsAddr are the bound addresses ("" when
// off).
func (r *Recorder) SourceAddr() string  { return r.addrs["source"] }
func (r *Recorder) BrokerAddr() string  { return r.addrs["broker"] }
func (r *Recorder) MetricsAddr() string { return r.addrs["metrics"] }

// Progress returns the counters so far.
func (r *Recorder) Progress() Progress {
	p := r.stats.snapshot()
	p.Elapsed = time.Since(r.start)
	return p
}

// Err is why the recording stopped early (the proxy still runs), or nil.
func (r *Recorder) Err() error { return r.trace.err() }

// notef logs a failed call.
func (r *Recorder) notef(format string, args ...any) {
	r.log.Warn(fmt.Sprintf(format, args...))
}

// event counts a message and queues its record. framed is false when the
// bytes are not a PublishRequest's event. It returns the record's index
// and whether it was queued, and the record without its data, for the
// outcome that follows a Publish.
func (r *Recorder) event(f format.Flow, actor string, b []byte, framed bool) (uint64, bool, format.Record) {
	r.stats.message(f, len(b))
	k, err := maestro.ExtractKeys(b)
	ok := framed && err == nil && k.Type != ""
	if !ok {
		r.stats.undecodable[f].Add(1)
		k = maestro.Keys{}
	}
	if ok && k.Type == maestro.TypeHeartbeat {
		r.stats.heartbeats.Add(1)
		if !r.cfg.KeepHeartbeats {
			return 0, false, format.Record{}
		}
	}
	if actor == "" && ok {
		if f.Agent() {
			actor = k.ClusterName
		} else {
			actor = k.Source
		}
	}
	rec := format.Record{Type: format.TypeEvent, Flow: f, Actor: actor, ResourceID: k.ResourceID, EventType: k.Type, Data: b}
	i, queued := r.trace.add(rec, k, ok)
	rec.Data = nil
	return i, queued, rec
}

// outcome queues the result of the Publish recorded as ev.
func (r *Recorder) outcome(ev format.Record, o format.Outcome) {
	ev.Type, ev.Outcome = format.TypeOutcome, o
	r.trace.add(ev, maestro.Keys{}, false)
}

// subscribe counts and queues a subscribe record.
func (r *Recorder) subscribe(f format.Flow, actor string, req []byte) {
	r.stats.message(f, len(req))
	r.trace.add(format.Record{Type: format.TypeEvent, Flow: f, Actor: actor, Data: req}, maestro.Keys{}, false)
}

// Summary is what a finished recording holds and saw.
type Summary struct {
	Out      string
	Digest   string // the trace's digest ("" when no manifest was written)
	Duration time.Duration
	Progress
	// Linked and Unlinked count the agents' statuses given a trigger and
	// kept without one.
	Linked, Unlinked int64
	// Stopped says why the recording stopped before the end ("" when it
	// did not); the trace holds what was recorded before.
	Stopped string
}

// Close stops the listeners (open streams end with Unavailable), writes
// the rest of the trace and its manifest, and returns the summary. Its
// error is the recording's: a trace that could not be finished, or one
// that stopped early. It is safe to call more than once.
func (r *Recorder) Close() (Summary, error) {
	r.closeOnce.Do(func() {
		for _, g := range r.servers {
			g.Stop()
		}
		for _, p := range r.ports {
			p.closeAll()
		}
		if r.http != nil {
			r.http.Close()
		}
		r.wg.Wait()
		err := r.trace.close()
		s := Summary{Out: r.cfg.Out, Duration: time.Since(r.start), Progress: r.Progress(),
			Linked: r.trace.link.linked, Unlinked: r.trace.link.unlinked}
		if m := r.trace.w.Manifest(); m != nil {
			s.Digest = m.Digest
		}
		if err != nil {
			s.Stopped = err.Error()
		}
		r.summary, r.closeErr = s, err
	})
	return r.summary, r.closeErr
}
