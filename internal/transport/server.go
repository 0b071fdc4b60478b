package transport

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServerTLS names PEM files of a server certificate, its key and, for
// mutual TLS, the CA that signs client certificates.
type ServerTLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Config loads the files into a TLS 1.3-only server configuration, as
// Maestro pins both gRPC ports to TLS 1.3; with a client CA, clients must
// present a certificate signed by it.
func (t ServerTLS) Config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
	}
	if t.ClientCAFile != "" {
		pool, err := readPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ServerOptions are Maestro's gRPC server options (pkg/config/grpc_server.go
// defaults), with TLS credentials when t is enabled. maxRecv limits one
// received message (Maestro's --grpc-max-receive-message-size).
func ServerOptions(maxRecv int, t ServerTLS) ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecv),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// Release a connection's write buffer between writes: 3,000 idle
		// agent connections would otherwise hold 32 KiB each.
		grpc.SharedWriteBuffer(true),
		grpc.ConnectionTimeout(120 * time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if t.Enabled() {
		cfg, err := t.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	return opts, nil
}

// SourcePortOptions are the extra server options of the source port. It
// carries every spec of a run on a connection or two, so it gets static
// 16 MiB windows and 64 KiB buffers, as a source's client connection has,
// instead of gRPC's dynamic window, which starts at 64 KiB and holds a
// paced Publish stream back. The broker port keeps gRPC's defaults: it has
// thousands of connections.
func SourcePortOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(SourceWindowSize), grpc.InitialConnWindowSize(SourceWindowSize),
		grpc.ReadBufferSize(SourceBufferSize), grpc.WriteBufferSize(SourceBufferSize),
	}
}

// Bearer checks that every call carries "authorization: Bearer <Token>"
// metadata; with an empty Token it lets every call through. Name prefixes
// the Unauthenticated message ("sim", "record").
type Bearer struct {
	Token string
	Name  string
}

// Check returns an Unauthenticated status error unless ctx's incoming
// metadata carries the token. The comparison takes constant time.
func (b Bearer) Check(ctx context.Context) error {
	if b.Token == "" {
		return nil
	}
	want := "Bearer " + b.Token
	md, _ := metadata.FromIncomingContext(ctx)
	for _, got := range md.Get("authorization") {
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, b.Name+": missing or wrong bearer token in the authorization metadata")
}

// Unary is the token check as a unary interceptor.
func (b Bearer) Unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := b.Check(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// Stream is the token check as a stream interceptor.
func (b Bearer) Stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := b.Check(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}
