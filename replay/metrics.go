package replay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the live view of a run, served for Prometheus while it plays.
// Each run has its own registry: no global state.
type metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec   // by flow, event type, outcome
	errors     *prometheus.CounterVec   // by gRPC code
	inflight   prometheus.Gauge         // Publish calls in flight
	lateness   prometheus.Histogram     // send lateness
	late       prometheus.Counter       // sends later than --late-warn
	latency    *prometheus.HistogramVec // by kind: publish, delivery, forward
	agents     prometheus.Gauge         // agent streams subscribed now
	reconnects prometheus.Counter
	received   *prometheus.CounterVec // stream messages by side and kind
}

func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(10e-6, 2, 22) // 10 µs .. ~21 s
	m := &metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cereplay_replay_events_total",
			Help: "Trace records finished, by flow, CloudEvent type and outcome.",
		}, []string{"flow", "type", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cereplay_replay_errors_total",
			Help: "Failed Publish and Subscribe calls, by gRPC code.",
		}, []string{"code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cereplay_replay_inflight",
			Help: "Publish calls in flight.",
		}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cereplay_replay_send_lateness_seconds",
			Help:    "How late each send left compared with its due time.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 26),
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cereplay_replay_late_sends_total",
			Help: "Paced sends that left later than --late-warn after their due time (the schedule is kept while they stay within 1% of the sends).",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cereplay_replay_latency_seconds",
			Help:    "Publish RPC latency, spec delivery latency (publish to agent) and status forward latency (agent publish to source).",
			Buckets: buckets,
		}, []string{"kind"}),
		agents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cereplay_replay_agents_connected",
			Help: "Agent Subscribe streams currently open.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cereplay_replay_reconnects_total",
			Help: "Subscribe streams re-established after a failure.",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cereplay_replay_received_total",
			Help: "Stream messages received, by side (agent, source) and kind (spec, status, heartbeat, other).",
		}, []string{"side", "kind"}),
	}
	m.reg.MustRegister(m.events, m.errors, m.inflight, m.lateness, m.late, m.latency, m.agents, m.reconnects, m.received,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// serve serves /metrics on addr. It returns the bound address (useful
// with port 0) and a function that stops the server.
func (m *metrics) serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("replay: metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	// Profiles of the replayer itself, to see where a large replay spends
	// its CPU and memory.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return ln.Addr().String(), stop, nil
}
