package replay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/cereplay/cereplay/internal/grpclite"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// The client transports a replay can make its calls with (--transport).
const (
	// TransportLite is grpclite: the calling goroutine writes its own
	// frames and streams deliver on the connection's reader, so a call
	// costs fewer wake-ups and allocations than gRPC-go's.
	TransportLite = "lite"
	// TransportGRPCGo is gRPC-go's client, the SDK's own.
	TransportGRPCGo = "grpc-go"
)

// rpcClient makes one connection's calls: the Publish RPC and Subscribe
// streams, with whichever transport the run uses.
type rpcClient interface {
	// publish sends one marshalled CloudEvent; ce must not change until
	// it returns. Errors are gRPC status errors.
	publish(ctx context.Context, ce []byte) error
	// subscribe opens a Subscribe stream with the marshalled
	// SubscriptionRequest req and returns once the server accepted it
	// (its response header names the subscription). handle gets each
	// message and must keep nothing of its bytes.
	subscribe(ctx context.Context, req []byte, handle func([]byte)) (rpcStream, error)
	// publishAsync starts a publish and returns; done gets its error and
	// whether timeout ended it. Only transports that can start a call
	// without waiting have it (asyncTransport).
	publishAsync(ce []byte, timeout time.Duration, done func(err error, timedOut bool))
	close()
}

// asyncTransport reports whether a transport's clients implement
// publishAsync.
func asyncTransport(name string) bool { return name == TransportLite }

// rpcStream is an open Subscribe stream.
type rpcStream interface {
	// wait delivers messages to the stream's handle until the stream
	// ends, and returns why.
	wait() error
}

// dialer makes the run's clients: agent says which of Maestro's two
// ports the connection is for (transport.ConnOptions).
type dialer func(addr string, agent bool) (rpcClient, error)

// newDialer returns the dialer of a transport, with the run's security
// settings (tlsCfg nil for cleartext) and reconnect backoff.
func newDialer(name string, tlsCfg *tls.Config, token string, cfg Config) (dialer, error) {
	switch name {
	case TransportGRPCGo:
		sec := transport.SecurityOptions(tlsCfg, token)
		agentOpts := transport.ConnOptions(sec, cfg.ReconnectMin, cfg.ReconnectMax, transport.AgentConn)
		sourceOpts := transport.ConnOptions(sec, cfg.ReconnectMin, cfg.ReconnectMax, transport.SourceConn)
		return func(addr string, agent bool) (rpcClient, error) {
			opts := sourceOpts
			if agent {
				opts = agentOpts
			}
			cc, err := grpc.NewClient(addr, opts...)
			if err != nil {
				return nil, err
			}
			return grpcClient{cc}, nil
		}, nil
	case TransportLite:
		// The read buffers of gRPC-go's connections (transport.ConnOptions
		// says why), and the source's windows for every connection:
		// grpclite hands each message over as it arrives and buffers
		// none, so a window costs no memory, while a small one costs a
		// WINDOW_UPDATE, a write of its own, every few specs an agent
		// receives.
		base := grpclite.Options{TLS: tlsCfg, Token: token, UserAgent: "cereplay",
			ReconnectMin: cfg.ReconnectMin, ReconnectMax: cfg.ReconnectMax,
			// A target that reads nothing for as long as a call may take
			// loses the connection rather than holding the pacer, which
			// writes (Client.Go).
			WriteTimeout: cfg.PublishTimeout,
			StreamWindow: transport.SourceWindowSize, ConnWindow: transport.SourceWindowSize}
		agentOpts, sourceOpts := base, base
		agentOpts.ReadBufferSize = transport.AgentBufferSize
		sourceOpts.ReadBufferSize = transport.SourceBufferSize
		return func(addr string, agent bool) (rpcClient, error) {
			if agent {
				return liteClient{grpclite.NewClient(addr, agentOpts)}, nil
			}
			return liteClient{grpclite.NewClient(addr, sourceOpts)}, nil
		}, nil
	}
	return nil, fmt.Errorf("transport %q: want %q or %q", name, TransportLite, TransportGRPCGo)
}

// errNoSubscriptionID is a Subscribe answered without the header that
// both Maestro servers send first: the stream failed to subscribe.
var errNoSubscriptionID = errors.New("replay: subscribe: no subscription-id header from the server")

// grpcClient makes the calls with gRPC-go.
type grpcClient struct{ cc *grpc.ClientConn }

func (g grpcClient) publish(ctx context.Context, ce []byte) error {
	var resp transport.RawMsg
	return g.cc.Invoke(ctx, transport.MethodPublish, &transport.RawMsg{Head: publishHead(ce), B: ce}, &resp, transport.RawCall)
}

// publishHead is what makes marshalled CloudEvent bytes a PublishRequest
// (field 1, length-delimited) when sent before them: the event is never
// copied to wrap it.
func publishHead(ce []byte) []byte {
	return wire.AppendPublishHead(make([]byte, 0, wire.PublishHeadSize(len(ce))), len(ce))
}

func (g grpcClient) subscribe(ctx context.Context, req []byte, handle func([]byte)) (rpcStream, error) {
	st, err := g.cc.NewStream(ctx, transport.SubscribeDesc, transport.MethodSubscribe, transport.RawCall)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&transport.RawMsg{B: req}); err != nil {
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
		var m transport.RawMsg
		if err := st.RecvMsg(&m); err != nil {
			return nil, err
		}
		return nil, errNoSubscriptionID
	}
	return grpcStream{st, handle}, nil
}

func (g grpcClient) close() { _ = g.cc.Close() }

func (grpcClient) publishAsync([]byte, time.Duration, func(error, bool)) {
	panic("replay: gRPC-go calls are made on publishing goroutines (asyncTransport)")
}

// grpcStream drains a gRPC-go stream on the goroutine that waits for it.
type grpcStream struct {
	st     grpc.ClientStream
	handle func([]byte)
}

func (s grpcStream) wait() error {
	var m transport.RawMsg
	for {
		if err := s.st.RecvMsg(&m); err != nil {
			return err
		}
		s.handle(m.B)
	}
}

// liteClient makes the calls with grpclite. Its streams deliver on the
// connection's reader goroutine, so handle must not block on anything
// that waits for an answer on the same connection (the replay's handlers
// only count, match and queue).
type liteClient struct{ c *grpclite.Client }

func (l liteClient) publish(ctx context.Context, ce []byte) error {
	return l.c.Invoke(ctx, transport.MethodPublish, publishHead(ce), ce)
}

func (l liteClient) publishAsync(ce []byte, timeout time.Duration, done func(err error, timedOut bool)) {
	l.c.Go(transport.MethodPublish, [][]byte{publishHead(ce), ce}, timeout, func(err error) {
		done(err, err == grpclite.ErrTimeout)
	})
}

func (l liteClient) subscribe(ctx context.Context, req []byte, handle func([]byte)) (rpcStream, error) {
	st, err := l.c.Stream(ctx, transport.MethodSubscribe, req, handle)
	if err != nil {
		return nil, err
	}
	if len(st.Header(maestro.SubscriptionIDHeader)) == 0 {
		return nil, errNoSubscriptionID
	}
	return liteStream{st}, nil
}

func (l liteClient) close() { _ = l.c.Close() }

type liteStream struct{ st *grpclite.Stream }

func (s liteStream) wait() error { return s.st.Wait() }
