package sim

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Port labels of the two gRPC listeners.
const (
	portSource = "source"
	portBroker = "broker"
)

// metrics are sim's Prometheus series, on a registry of their own so that
// several servers (tests) can run in one process.
type metrics struct {
	registry *prometheus.Registry

	rpcs          *prometheus.CounterVec   // port, method, code
	rpcDuration   *prometheus.HistogramVec // port, method
	received      *prometheus.CounterVec   // port, type
	sent          *prometheus.CounterVec   // port, type
	subscribers   *prometheus.GaugeVec     // port
	statusIgnored *prometheus.CounterVec   // reason
	specDelivery  prometheus.Histogram
	statusForward prometheus.Histogram
}

// latencyBuckets cover 50 µs to ~3 s: sim answers in microseconds, but a
// backlog under load shows up as seconds.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2.5, 14)

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sim_grpc_requests_total",
			Help: "gRPC calls handled, by port (source or broker), method and status code.",
		}, []string{"port", "method", "code"}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sim_grpc_publish_duration_seconds",
			Help:    "Time to handle one Publish, by port, including --publish-latency.",
			Buckets: latencyBuckets,
		}, []string{"port"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sim_events_received_total",
			Help: "CloudEvents received by Publish, by port and event type.",
		}, []string{"port", "type"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sim_events_sent_total",
			Help: "CloudEvents sent, by port and event type: spec events handed to a consumer's agent streams (counted once per consumer), status sent on each source stream; heartbeats and spec resync answers excluded.",
		}, []string{"port", "type"}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sim_subscribers",
			Help: "Open Subscribe streams, by port.",
		}, []string{"port"}),
		statusIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sim_status_ignored_total",
			Help: "Agent status events accepted but not stored, by reason (unknown_resource, stale_version, unchanged, older_sequence).",
		}, []string{"reason"}),
		specDelivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sim_spec_delivery_seconds",
			Help:    "From a spec Publish accepted on the source port to the event queued on every agent stream of its consumer.",
			Buckets: latencyBuckets,
		}),
		statusForward: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sim_status_forward_seconds",
			Help:    "From an agent status stored to the forwarded event sent on every source stream of its source.",
			Buckets: latencyBuckets,
		}),
	}
	m.registry.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.rpcs, m.rpcDuration, m.received, m.sent, m.subscribers, m.statusIgnored,
		m.specDelivery, m.statusForward,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sim_resources",
			Help: "Resource bundles stored, including those being deleted.",
		}, func() float64 { return float64(s.store.resourceCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sim_consumers",
			Help: "Consumers (clusters) registered.",
		}, func() float64 { return float64(s.store.consumerCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sim_spec_queue_length",
			Help: "Spec events accepted but not yet handed to agent streams.",
		}, func() float64 { return float64(s.specQueue.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sim_status_queue_length",
			Help: "Status events stored but not yet forwarded to source streams.",
		}, func() float64 { return float64(s.statusQueue.Len()) }),
	)
	for _, p := range []string{portSource, portBroker} {
		m.subscribers.WithLabelValues(p)
	}
	return m
}

// methodLabel is the last element of a gRPC full method name.
func methodLabel(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

func (m *metrics) unaryInterceptor(port string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		method := methodLabel(info.FullMethod)
		m.rpcs.WithLabelValues(port, method, status.Code(err).String()).Inc()
		if method == "Publish" {
			m.rpcDuration.WithLabelValues(port).Observe(time.Since(start).Seconds())
		}
		return resp, err
	}
}

func (m *metrics) streamInterceptor(port string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		m.rpcs.WithLabelValues(port, methodLabel(info.FullMethod), status.Code(err).String()).Inc()
		return err
	}
}
