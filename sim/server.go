package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
	workpayload "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	sdkgrpc "open-cluster-management.io/sdk-go/pkg/cloudevents/server/grpc"

	"github.com/cereplay/cereplay/internal/queue"
	"github.com/cereplay/cereplay/internal/transport"
)

// Server is a running sim. All its listeners are open when Start returns;
// Close stops them.
type Server struct {
	cfg     Config
	log     *slog.Logger
	klogger logr.Logger // for the SDK, which logs through klog
	store   *store
	metrics *metrics

	// specQueue feeds the single spec worker that hands spec events to the
	// broker, like Maestro's single spec-controller worker.
	specQueue *queue.Queue[specItem]
	// statusQueue feeds the single worker that forwards status to source
	// subscribers, like Maestro's status controller.
	statusQueue *queue.Queue[statusItem]
	pending     *pendingSpecs
	agents      *agentStreams
	bundles     *bundleCache
	canon       *canonCache
	checked     *statusCache
	sources     *sourceSubscribers

	// brokers are the SDK brokers of the agent port, agents spread over
	// them by cluster (brokerFor).
	brokers []*sdkgrpc.GRPCBroker

	sourceGRPC, brokerGRPC *grpc.Server
	httpServers            []*http.Server
	sourceAddr, brokerAddr string
	restAddr, metricsAddr  string
	healthAddr             string

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Start opens every configured listener, serves them in the background and
// returns. The server stops when ctx is done or Close is called.
func Start(ctx context.Context, c Config) (*Server, error) {
	return StartWithLogger(ctx, c, nil)
}

// StartWithLogger is Start with a logger for the server's own messages
// (nil discards them).
func StartWithLogger(ctx context.Context, c Config, log *slog.Logger) (*Server, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.MaxReceiveMessageSize == 0 {
		c.MaxReceiveMessageSize = defaultMaxReceive
	}
	if c.HTTPReadTimeout == 0 {
		c.HTTPReadTimeout = defaultHTTPReadTimeout
	}
	klogger := logr.Discard()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	} else {
		klogger = logr.FromSlogHandler(log.Handler())
	}
	s := &Server{
		cfg:         c,
		log:         log,
		klogger:     klogger,
		store:       newStore(),
		specQueue:   queue.New[specItem](),
		statusQueue: queue.New[statusItem](),
		pending:     newPendingSpecs(),
		agents:      newAgentStreams(),
		bundles:     newBundleCache(),
		canon:       newCanonCache(),
		checked:     newStatusCache(),
		sources:     newSourceSubscribers(),
		done:        make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Add(2)
	go s.specWorker()
	go s.statusWorker()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// listen binds every listener first, so that a busy port fails Start
// before anything serves, then starts serving.
func (s *Server) listen() error {
	// Load TLS material first, so that a bad file fails before any port
	// is bound.
	sourceOpts, err := s.grpcOptions(portSource, s.cfg.SourceTLS)
	if err != nil {
		return err
	}
	brokerOpts, err := s.grpcOptions(portBroker, s.cfg.BrokerTLS)
	if err != nil {
		return err
	}
	type bound struct {
		name string
		lis  net.Listener
		addr *string
	}
	var all []bound
	for _, l := range []struct {
		name string
		addr string
		dst  *string
	}{
		{"source", s.cfg.SourceListen, &s.sourceAddr},
		{"broker", s.cfg.BrokerListen, &s.brokerAddr},
		{"REST", s.cfg.RESTListen, &s.restAddr},
		{"metrics", s.cfg.MetricsListen, &s.metricsAddr},
		{"health", s.cfg.HealthListen, &s.healthAddr},
	} {
		if l.addr == "" {
			continue
		}
		lis, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, b := range all {
				b.lis.Close()
			}
			return fmt.Errorf("sim: %s listener on %s: %w", l.name, l.addr, err)
		}
		*l.dst = lis.Addr().String()
		all = append(all, bound{l.name, lis, l.dst})
	}
	for _, b := range all {
		switch b.name {
		case "source":
			s.serveSource(b.lis, sourceOpts)
		case "broker":
			s.serveBroker(b.lis, brokerOpts)
		case "REST":
			s.serveHTTP(b.lis, s.restHandler())
		case "metrics":
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
			// Profiles of sim itself, to see where a large replay
			// spends sim's CPU and where its goroutines wait.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			s.serveHTTP(b.lis, mux)
		case "health":
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				fmt.Fprintln(w, "OK")
			})
			s.serveHTTP(b.lis, mux)
		}
	}
	return nil
}

// grpcOptions are Maestro's server options (internal/transport) plus sim's
// metrics, panic guard and bearer token check.
func (s *Server) grpcOptions(port string, t TLSFiles) ([]grpc.ServerOption, error) {
	opts, err := transport.ServerOptions(s.cfg.MaxReceiveMessageSize, t)
	if err != nil {
		return nil, fmt.Errorf("sim: %s port: %w", port, err)
	}
	auth := transport.Bearer{Token: s.cfg.BearerToken, Name: "sim"}
	return append(opts,
		grpc.ChainUnaryInterceptor(recoverUnary(s.log), s.metrics.unaryInterceptor(port), auth.Unary, s.sdkLoggerUnary),
		grpc.ChainStreamInterceptor(recoverStream(s.log), s.metrics.streamInterceptor(port), auth.Stream, s.sdkLoggerStream),
	), nil
}

func (s *Server) serveSource(lis net.Listener, opts []grpc.ServerOption) {
	// The source port carries every spec of a run on a connection or two:
	// its windows and buffers are the source port's (internal/transport).
	s.sourceGRPC = grpc.NewServer(append(opts, transport.SourcePortOptions()...)...)
	pbv1.RegisterCloudEventServiceServer(s.sourceGRPC, &sourceServer{s: s})
	s.serveGRPC(s.sourceGRPC, lis)
}

func (s *Server) serveBroker(lis net.Listener, opts []grpc.ServerOption) {
	bo := sdkgrpc.NewBrokerOptions()
	bo.HeartbeatCheckInterval = s.cfg.HeartbeatInterval
	bo.HeartbeatDisabled = s.cfg.HeartbeatInterval <= 0
	for range brokerShards {
		b := sdkgrpc.NewGRPCBroker(bo)
		b.RegisterService(context.Background(), workpayload.ManifestBundleEventDataType, &brokerService{s: s})
		s.brokers = append(s.brokers, b)
	}
	s.brokerGRPC = grpc.NewServer(opts...)
	pbv1.RegisterCloudEventServiceServer(s.brokerGRPC, &brokerServer{s: s})
	s.serveGRPC(s.brokerGRPC, lis)
}

func (s *Server) serveGRPC(g *grpc.Server, lis net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("gRPC server stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
}

func (s *Server) serveHTTP(lis net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadTimeout: s.cfg.HTTPReadTimeout, IdleTimeout: 2 * time.Minute}
	s.httpServers = append(s.httpServers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP server stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
}

// SourceAddr is the host:port of the source gRPC port ("" when off).
func (s *Server) SourceAddr() string { return s.sourceAddr }

// BrokerAddr is the host:port of the agent broker gRPC port.
func (s *Server) BrokerAddr() string { return s.brokerAddr }

// RESTURL is the base URL of the REST API, e.g. http://127.0.0.1:8000.
func (s *Server) RESTURL() string {
	if s.restAddr == "" {
		return ""
	}
	return "http://" + s.restAddr
}

// MetricsAddr is the host:port serving /metrics.
func (s *Server) MetricsAddr() string { return s.metricsAddr }

// HealthAddr is the host:port serving /healthcheck.
func (s *Server) HealthAddr() string { return s.healthAddr }

// Gatherer exposes sim's metrics registry, for tests and embedding.
func (s *Server) Gatherer() prometheus.Gatherer { return s.metrics.registry }

// CreateConsumer registers a consumer (cluster) as POST
// /api/maestro/v1/consumers does; it fails if the name exists.
func (s *Server) CreateConsumer(name string) error {
	if err := validateConsumerName(name); err != nil {
		return fmt.Errorf("sim: consumer %q: %w", name, err)
	}
	if _, err := s.store.createConsumer(name, nil); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// Close stops every listener and worker and waits for them. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.specQueue.Close()
		s.statusQueue.Close()
		// Stop, not GracefulStop: Subscribe streams never end on their own.
		if s.sourceGRPC != nil {
			s.sourceGRPC.Stop()
		}
		if s.brokerGRPC != nil {
			s.brokerGRPC.Stop()
		}
		var errs []error
		for _, h := range s.httpServers {
			if err := h.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// sleepLatency waits PublishLatency, or less if the call is cancelled, and
// then returns the call's status if it was: a call its client gave up on
// during the database's work is not stored, as Maestro's database calls
// fail with the request's context.
func (s *Server) sleepLatency(ctx context.Context) error {
	if s.cfg.PublishLatency <= 0 {
		return nil
	}
	t := time.NewTimer(s.cfg.PublishLatency)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-s.done:
	}
	return nil
}

// sdkLoggerUnary and sdkLoggerStream give the SDK broker, which logs
// through klog.FromContext, sim's logger in the request context: its
// messages (one per subscription, 3,000 in a scale run) follow sim's
// logger instead of klog's process-wide default.
func (s *Server) sdkLoggerUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(klog.NewContext(ctx, s.klogger), req)
}

func (s *Server) sdkLoggerStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &loggedStream{ServerStream: ss, ctx: klog.NewContext(ss.Context(), s.klogger)})
}

type loggedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (l *loggedStream) Context() context.Context { return l.ctx }

// recoverUnary turns a panic in a handler into an Internal error, so that
// no input can crash the server.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "sim: internal error in %s: %v", info.FullMethod, p)
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in gRPC stream handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "sim: internal error in %s: %v", info.FullMethod, p)
			}
		}()
		return h(srv, ss)
	}
}
