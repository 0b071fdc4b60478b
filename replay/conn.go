package replay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cereplay/cereplay/maestro"
)

// The two RPCs of io.cloudevents.v1.CloudEventService (PROTOCOL.md §2).
const (
	methodPublish   = "/io.cloudevents.v1.CloudEventService/Publish"
	methodSubscribe = "/io.cloudevents.v1.CloudEventService/Subscribe"
)

// TLS holds the client security options shared by every connection. Secrets
// are read from files; their contents are never logged.
type TLS struct {
	CAFile   string // CA bundle that signs the server certificates; enables TLS
	CertFile string // client certificate for mTLS
	KeyFile  string // client key for mTLS
	// ServerName overrides the name checked in the server certificate.
	ServerName string
	// TokenFile holds a bearer token sent as "authorization: Bearer ..."
	// on every call; it needs TLS.
	TokenFile string
}

// enabled reports whether any TLS option is set.
func (t TLS) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// load reads the files: the TLS client configuration (nil without TLS)
// and the bearer token ("" without one).
func (t TLS) load() (*tls.Config, string, error) {
	var token string
	if t.TokenFile != "" {
		tok, err := os.ReadFile(t.TokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("replay: token file: %w", err)
		}
		if token = strings.TrimSpace(string(tok)); token == "" {
			return nil, "", fmt.Errorf("replay: token file %s is empty", t.TokenFile)
		}
	}
	if !t.enabled() {
		if token != "" {
			return nil, "", errors.New("replay: a bearer token (--token-file) needs TLS (--ca-file): it would travel in clear text")
		}
		return nil, "", nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("replay: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("replay: CA file %s: no PEM certificate in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, "", errors.New("replay: client certificate and key go together (--cert-file and --key-file)")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("replay: client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, token, nil
}

// dialOptions turns the loaded security settings into gRPC dial options.
func dialOptions(cfg *tls.Config, token string) []grpc.DialOption {
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

// connOptions are the transport settings of every replay connection.
// Keepalive stays off (PROTOCOL.md §10: Maestro punishes pings without
// streams), and buffers are smaller than gRPC's 32 KiB defaults because a
// replay holds thousands of connections that each carry a few KiB at a time.
//
// Agent connections (agent true) also get static 64 KiB flow-control
// windows: the dynamic (BDP) window can grow to megabytes per connection,
// which thousands of agents cannot afford.
//
// A source's connection is the opposite: one connection carries every
// Publish of the run and every forwarded status (12 KB each, 1.8 GB for
// the default trace), so it gets 64 KiB buffers and static 16 MiB
// windows. With the dynamic window, which starts at 64 KiB (five
// statuses), the target could only send a few statuses per round trip
// through both schedulers; under the load of thousands of agent streams
// that round trip took milliseconds, the forward stream crawled, and
// --max backpressure (which waits for forwards) held the whole replay to
// its pace.
func connOptions(sec []grpc.DialOption, reconnectMin, reconnectMax time.Duration, agent bool) []grpc.DialOption {
	bc := backoff.DefaultConfig
	bc.BaseDelay = reconnectMin
	bc.MaxDelay = reconnectMax
	opts := append(append([]grpc.DialOption(nil), sec...),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 5 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if agent {
		return append(opts,
			grpc.WithReadBufferSize(4<<10),
			grpc.WithWriteBufferSize(4<<10),
			grpc.WithStaticStreamWindowSize(64<<10),
			grpc.WithStaticConnWindowSize(64<<10))
	}
	return append(opts,
		grpc.WithReadBufferSize(sourceBufferSize),
		grpc.WithWriteBufferSize(sourceBufferSize),
		grpc.WithStaticStreamWindowSize(sourceWindowSize),
		grpc.WithStaticConnWindowSize(sourceWindowSize))
}

// Transport sizes of a source's connection (see connOptions).
const (
	sourceBufferSize = 64 << 10
	sourceWindowSize = 16 << 20
)

// rawMsg is a protobuf message kept as its wire bytes: the replay sends
// trace bytes as they are and parses received events with
// maestro.ExtractKeys, never decoding them fully.
type rawMsg struct {
	// head goes on the wire before b: the tag and length that make a
	// CloudEvent's bytes a PublishRequest, so the event is never copied
	// to wrap it.
	head []byte
	b    []byte
}

// rawCodec passes rawMsg bytes through gRPC untouched. The content type stays
// application/grpc (ForceCodecV2 does not change it), so servers decode the
// bytes with their usual protobuf codec.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("replay: raw codec cannot marshal %T", v)
	}
	if len(m.head) == 0 {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(m.head), mem.SliceBuffer(m.b)}, nil
}

// Unmarshal copies the message into m.b, reusing its capacity: a stream
// that receives into one rawMsg allocates only when a message is bigger
// than any before it (gRPC frees data after Unmarshal, so it must be
// copied), and must be done with the previous message's bytes.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("replay: raw codec cannot unmarshal into %T", v)
	}
	m.b = m.b[:0]
	for _, buf := range data {
		m.b = append(m.b, buf.ReadOnlyData()...)
	}
	return nil
}

func (rawCodec) Name() string { return "proto" }

var rawCall = grpc.ForceCodecV2(rawCodec{})

// publishRequest wraps marshalled CloudEvent bytes as a PublishRequest
// (field 1, length-delimited) without copying them: the tag and length go
// in head, the event bytes follow.
func publishRequest(ce []byte) *rawMsg {
	head := make([]byte, 0, 1+protowire.SizeVarint(uint64(len(ce))))
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	return &rawMsg{head: protowire.AppendVarint(head, uint64(len(ce))), b: ce}
}

// publish sends one marshalled CloudEvent with the Publish RPC. ce must not
// change until publish returns.
func publish(ctx context.Context, cc *grpc.ClientConn, ce []byte) error {
	var resp rawMsg
	return cc.Invoke(ctx, methodPublish, publishRequest(ce), &resp, rawCall)
}

// subscribeDesc describes the server-streaming Subscribe RPC.
var subscribeDesc = &grpc.StreamDesc{StreamName: "Subscribe", ServerStreams: true}

// subscribe opens a Subscribe stream with the given marshalled
// SubscriptionRequest and waits for the response header, which both
// Maestro servers send first (a stream without it failed to subscribe).
func subscribe(ctx context.Context, cc *grpc.ClientConn, req []byte) (grpc.ClientStream, error) {
	st, err := cc.NewStream(ctx, subscribeDesc, methodSubscribe, rawCall)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&rawMsg{b: req}); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	md, err := st.Header()
	if err != nil {
		return nil, err
	}
	if len(md.Get(maestro.SubscriptionIDHeader)) == 0 {
		// A trailers-only answer: the server refused the subscription.
		var m rawMsg
		if err := st.RecvMsg(&m); err != nil {
			return nil, err
		}
		return nil, errors.New("replay: subscribe: no subscription-id header from the server")
	}
	return st, nil
}
