package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ClientTLS holds the client security options of a connection. Secrets are
// read from files; their contents are never logged. Errors name the file
// but carry no package prefix: callers add their own.
type ClientTLS struct {
	CAFile   string // CA bundle that signs the server certificates; enables TLS
	CertFile string // client certificate for mTLS
	KeyFile  string // client key for mTLS
	// ServerName overrides the name checked in the server certificate.
	ServerName string
	// TokenFile holds a bearer token sent as "authorization: Bearer ..."
	// on every call; it needs TLS.
	TokenFile string
}

// Enabled reports whether any TLS option is set.
func (t ClientTLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Load reads the files: the TLS client configuration (nil without TLS)
// and the bearer token ("" without one).
func (t ClientTLS) Load() (*tls.Config, string, error) {
	var token string
	if t.TokenFile != "" {
		var err error
		if token, err = ReadToken(t.TokenFile); err != nil {
			return nil, "", err
		}
	}
	if !t.Enabled() {
		if token != "" {
			return nil, "", errors.New("a bearer token (--token-file) needs TLS (--ca-file): it would travel in clear text")
		}
		return nil, "", nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pool, err := readPool(t.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, "", errors.New("client certificate and key go together (--cert-file and --key-file)")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, token, nil
}

// DialOptions loads the files and returns the security dial options:
// TLS credentials and the bearer token, or an insecure transport.
func (t ClientTLS) DialOptions() ([]grpc.DialOption, error) {
	cfg, token, err := t.Load()
	if err != nil {
		return nil, err
	}
	return SecurityOptions(cfg, token), nil
}

// ReadToken reads a bearer token from a file, trimmed of surrounding
// space; an empty token is an error.
func ReadToken(file string) (string, error) {
	tok, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return token, nil
}

// readPool reads a PEM CA bundle into a certificate pool.
func readPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// SecurityOptions turns loaded security settings into gRPC dial options.
func SecurityOptions(cfg *tls.Config, token string) []grpc.DialOption {
	if cfg == nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return opts
}

// bearer sends a token with every call, only over TLS.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// Conn says which of Maestro's two ports a connection is for, which decides
// its transport sizes (see ConnOptions).
type Conn int

const (
	// AgentConn is one of thousands of agent connections to the broker
	// port, each carrying a few KiB at a time.
	AgentConn Conn = iota
	// SourceConn is a source's connection to the source port, which
	// carries every Publish and every forwarded status of a run.
	SourceConn
)

// ConnOptions are the transport settings of a client connection, after the
// security options sec. Keepalive stays off (PROTOCOL.md §10: Maestro
// punishes pings without streams).
//
// Agent connections, thousands of them each carrying a few KiB at a time,
// get 32 KiB buffers that they hold only while they use them: gRPC lends a
// connection its read buffer while bytes wait in it, and a shared write
// buffer between flushes. A status then leaves in one write and a spec
// arrives in one read; with 4 KiB buffers each took two or three system
// calls. They also get static 64 KiB flow-control windows: the dynamic
// (BDP) window can grow to megabytes per connection, which thousands of
// agents cannot afford.
//
// A source's connection is the opposite: one connection carries every
// Publish of a run and every forwarded status, so it gets 64 KiB buffers
// and static 16 MiB windows. With the dynamic window, which starts at
// 64 KiB (five statuses), the server can only send a few statuses per round
// trip through both schedulers, and under the load of thousands of agent
// streams the forward stream crawls.
func ConnOptions(sec []grpc.DialOption, reconnectMin, reconnectMax time.Duration, c Conn) []grpc.DialOption {
	bc := backoff.DefaultConfig
	bc.BaseDelay = reconnectMin
	bc.MaxDelay = reconnectMax
	opts := append(append([]grpc.DialOption(nil), sec...),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if c == AgentConn {
		return append(opts,
			grpc.WithReadBufferSize(AgentBufferSize),
			grpc.WithWriteBufferSize(AgentBufferSize),
			grpc.WithSharedWriteBuffer(true),
			grpc.WithStaticStreamWindowSize(64<<10),
			grpc.WithStaticConnWindowSize(64<<10))
	}
	return append(opts,
		grpc.WithReadBufferSize(SourceBufferSize),
		grpc.WithWriteBufferSize(SourceBufferSize),
		grpc.WithStaticStreamWindowSize(SourceWindowSize),
		grpc.WithStaticConnWindowSize(SourceWindowSize))
}

// Transport sizes of the source port's connections, on both ends (see
// ConnOptions and SourcePortOptions), and of agent connections.
const (
	AgentBufferSize  = 32 << 10
	SourceBufferSize = 64 << 10
	SourceWindowSize = 16 << 20
)

// ProbeTLS opens one TLS connection to addr with cfg, the way a gRPC
// client would, and waits up to timeout for the server's first bytes. It
// returns the TLS error that ends the connection, or nil when the
// handshake held (the server spoke, or stayed silent). It is what explains
// a refusal that gRPC reports badly: under TLS 1.3 a server that rejects
// the client's certificate (none, expired, of another CA) says so in an
// alert after the client's side of the handshake is done, and gRPC, which
// writes before it reads, often reports only "broken pipe".
func ProbeTLS(addr string, cfg *tls.Config, timeout time.Duration) error {
	c := cfg.Clone()
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	c.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, c)
	if err != nil {
		var netErr *net.OpError
		if errors.As(err, &netErr) && netErr.Op == "dial" {
			return nil // not a TLS problem: the caller's own error says it
		}
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil && strings.Contains(err.Error(), "tls:") {
		return err
	}
	return nil
}
