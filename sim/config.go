package sim

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

// Config says where sim listens and how it behaves. Start from
// DefaultConfig and change what you need; an empty listen address turns
// that listener off.
type Config struct {
	// SourceListen is the host:port of the source-facing gRPC server
	// (Maestro's --grpc-server-bindport, 8090). Port 0 picks a free port.
	SourceListen string
	// BrokerListen is the host:port of the agent-facing gRPC broker
	// (Maestro's --grpc-broker-bindport, 8091).
	BrokerListen string
	// RESTListen is the host:port of the consumers and resource-bundles
	// REST API (8000).
	RESTListen string
	// MetricsListen is the host:port serving Prometheus /metrics (8080).
	MetricsListen string
	// HealthListen is the host:port serving /healthcheck (8083).
	HealthListen string

	// HeartbeatInterval is how often every Subscribe stream, on both gRPC
	// ports, gets a heartbeat event (Maestro's --heartbeat-check-interval,
	// 10s). Zero or less turns heartbeats off (--heartbeat-disable).
	HeartbeatInterval time.Duration
	// PublishLatency is added to every Publish on both gRPC ports before it
	// is processed, to model the database work of a real Maestro (which
	// answers a create in about 2-3 ms). Zero adds nothing.
	PublishLatency time.Duration

	// SourceTLS and BrokerTLS turn on TLS (1.3 only, as Maestro) for the
	// two gRPC ports when a certificate is set; with a client CA, clients
	// must present a certificate signed by it (mTLS).
	SourceTLS, BrokerTLS TLSFiles

	// BearerToken, when set, is required on every call to both gRPC ports
	// as "authorization: Bearer <token>" metadata; calls without it fail
	// with Unauthenticated. Maestro checks tokens with a Kubernetes
	// TokenReview; sim compares with this one value. Never logged.
	BearerToken string

	// MaxReceiveMessageSize limits one received gRPC message (Maestro's
	// --grpc-max-receive-message-size, 4 MiB). Zero means 4 MiB.
	MaxReceiveMessageSize int

	// HTTPReadTimeout bounds reading one HTTP request, headers and body,
	// on the REST, metrics and health listeners, so that clients that
	// stall mid-request do not hold connections open. Zero means 10s.
	HTTPReadTimeout time.Duration
}

// TLSFiles names PEM files of a server certificate, its key and, for
// mutual TLS, the CA that signs client certificates.
type TLSFiles = transport.ServerTLS

// DefaultConfig listens on 127.0.0.1 at Maestro's ports with Maestro's
// 10-second heartbeat and no extra latency.
func DefaultConfig() Config {
	host := "127.0.0.1"
	return Config{
		SourceListen:          net.JoinHostPort(host, strconv.Itoa(maestro.DefaultSourcePort)),
		BrokerListen:          net.JoinHostPort(host, strconv.Itoa(maestro.DefaultBrokerPort)),
		RESTListen:            net.JoinHostPort(host, strconv.Itoa(maestro.DefaultRESTPort)),
		MetricsListen:         net.JoinHostPort(host, strconv.Itoa(maestro.DefaultMetricsPort)),
		HealthListen:          net.JoinHostPort(host, strconv.Itoa(maestro.DefaultHealthPort)),
		HeartbeatInterval:     10 * time.Second,
		MaxReceiveMessageSize: defaultMaxReceive,
	}
}

// LoopbackConfig is DefaultConfig with every port 0, so the system picks
// free ports: the form tests and embedded uses want.
func LoopbackConfig() Config {
	c := DefaultConfig()
	c.SourceListen = "127.0.0.1:0"
	c.BrokerListen = "127.0.0.1:0"
	c.RESTListen = "127.0.0.1:0"
	c.MetricsListen = "127.0.0.1:0"
	c.HealthListen = "127.0.0.1:0"
	return c
}

const defaultMaxReceive = 4 << 20

// defaultHTTPReadTimeout is ample for the REST API's bodies (at most
// 1 MiB), even on a loaded machine.
const defaultHTTPReadTimeout = 10 * time.Second

// ErrConfig marks an unusable configuration.
var ErrConfig = errors.New("sim: invalid configuration")

func (c Config) validate() error {
	if c.SourceListen == "" && c.BrokerListen == "" && c.RESTListen == "" && c.MetricsListen == "" && c.HealthListen == "" {
		return fmt.Errorf("%w: every listen address is empty: nothing to serve", ErrConfig)
	}
	for _, l := range []struct{ name, addr string }{
		{"source listen", c.SourceListen}, {"broker listen", c.BrokerListen},
		{"REST listen", c.RESTListen}, {"metrics listen", c.MetricsListen},
		{"health listen", c.HealthListen},
	} {
		if l.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("%w: %s address %q: want host:port: %v", ErrConfig, l.name, l.addr, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("%w: %s address %q: port %q is not a number from 0 to 65535", ErrConfig, l.name, l.addr, port)
		}
	}
	if c.PublishLatency < 0 {
		return fmt.Errorf("%w: publish latency %v is negative", ErrConfig, c.PublishLatency)
	}
	if c.HTTPReadTimeout < 0 {
		return fmt.Errorf("%w: HTTP read timeout %v is negative", ErrConfig, c.HTTPReadTimeout)
	}
	if c.MaxReceiveMessageSize < 0 {
		return fmt.Errorf("%w: max receive message size %d is negative", ErrConfig, c.MaxReceiveMessageSize)
	}
	for _, t := range []struct {
		name string
		f    TLSFiles
	}{{"source", c.SourceTLS}, {"broker", c.BrokerTLS}} {
		if (t.f.CertFile == "") != (t.f.KeyFile == "") {
			return fmt.Errorf("%w: %s TLS needs both a certificate and a key file", ErrConfig, t.name)
		}
		if t.f.ClientCAFile != "" && t.f.CertFile == "" {
			return fmt.Errorf("%w: %s client CA %s given without a server certificate", ErrConfig, t.name, t.f.ClientCAFile)
		}
	}
	return nil
}
