package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	grpcstats "google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

// port proxies one of Maestro's two gRPC ports to its upstream. Each client
// connection gets its own upstream connection, dialled at its first call
// and closed with it, so Maestro sees as many connections, with the same
// flow-control settings, as without the proxy.
type port struct {
	name                 string // "source" or "broker"
	publish, stream, sub format.Flow
	upstream             string
	dial                 []grpc.DialOption
	// forwardAuth passes the client's authorization metadata upstream:
	// only when the proxy neither checks a token nor sends its own.
	forwardAuth bool
	rec         *Recorder

	mu    sync.Mutex
	conns map[*upConn]struct{}
	// shared, when set, are the upstream connections all clients share
	// (Config.UpstreamConns), each client connection on one of them.
	shared []*upConn
	nextSh int
}

// upConn is the upstream connection of one client connection.
type upConn struct {
	once sync.Once
	cc   *grpc.ClientConn
	err  error
}

type connKey struct{}

// handler proxies every call on the port: Publish and Subscribe of the
// CloudEventService, and any other method refused as Maestro refuses it.
func (p *port) handler(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	switch method {
	case transport.MethodPublish:
		return p.proxyPublish(ss)
	case transport.MethodSubscribe:
		return p.proxySubscribe(ss)
	}
	return status.Errorf(codes.Unimplemented, "unknown method %s", method)
}

// conn returns the upstream connection of the client connection ss
// arrived on.
func (p *port) conn(ctx context.Context) (*grpc.ClientConn, error) {
	u, _ := ctx.Value(connKey{}).(*upConn)
	if u == nil {
		return nil, status.Error(codes.Internal, "record: call without a connection")
	}
	u.once.Do(func() {
		u.cc, u.err = grpc.NewClient(p.upstream, p.dial...)
		if u.err != nil {
			u.err = status.Errorf(codes.Unavailable, "record: %s upstream %s: %v", p.name, p.upstream, u.err)
		}
	})
	return u.cc, u.err
}

// outgoing is the client's metadata as the upstream should see it: gRPC's
// own headers and pseudo-headers are set again by the upstream call, and
// authorization only passes when forwardAuth.
func (p *port) outgoing(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		switch {
		case strings.HasPrefix(k, ":"), strings.HasPrefix(k, "grpc-"),
			k == "content-type", k == "user-agent", k == "te":
		case k == "authorization" && !p.forwardAuth:
		default:
			out[k] = v
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// proxyPublish forwards one Publish and records its request, then its
// result as an outcome record.
func (p *port) proxyPublish(ss grpc.ServerStream) error {
	var req transport.RawMsg
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	start := time.Now()
	cc, err := p.conn(ss.Context())
	if err != nil {
		return err
	}
	ev, perr := maestro.PublishRequestEvent(req.B)
	if perr != nil {
		ev = req.B // not a PublishRequest: kept raw, counted undecodable
	}
	idx, rec, r := p.rec.event(p.publish, "", ev, perr == nil)
	var hdr, trl metadata.MD
	var resp transport.RawMsg
	call := time.Now()
	err = cc.Invoke(p.outgoing(ss.Context()), transport.MethodPublish, &transport.RawMsg{B: req.B}, &resp,
		transport.RawCall, grpc.Header(&hdr), grpc.Trailer(&trl))
	back := time.Now()
	if rec {
		o := format.Outcome{Index: idx, Status: format.OutcomeSent, Latency: back.Sub(call)}
		if err != nil {
			st := status.Convert(err)
			o.Status, o.Code, o.Note = format.OutcomeFailed, uint32(st.Code()), st.Message()
		}
		p.rec.outcome(r, o)
	}
	p.rec.stats.result(err)
	if len(hdr) > 0 {
		if herr := ss.SetHeader(hdr); herr != nil {
			return herr
		}
	}
	ss.SetTrailer(trl)
	if err != nil {
		p.rec.notef("%s Publish: %v", p.name, err)
		p.rec.stats.addedLatency(p.name, call.Sub(start)+time.Since(back))
		return err
	}
	err = ss.SendMsg(&resp)
	p.rec.stats.addedLatency(p.name, call.Sub(start)+time.Since(back))
	return err
}

// proxySubscribe opens the client's own upstream stream, sends its header
// back as soon as the upstream sends it, and forwards and records every
// message until either side ends; the upstream's trailer and status go
// back unchanged.
func (p *port) proxySubscribe(ss grpc.ServerStream) error {
	var req transport.RawMsg
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	actor := subscriber(req.B, p.sub)
	p.rec.subscribe(p.sub, actor, req.B)
	cc, err := p.conn(ss.Context())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(p.outgoing(ss.Context()))
	defer cancel()
	up, err := cc.NewStream(ctx, transport.SubscribeDesc, transport.MethodSubscribe, transport.RawCall)
	if err != nil {
		p.rec.stats.result(err)
		return err
	}
	if err := up.SendMsg(&transport.RawMsg{B: req.B}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := up.CloseSend(); err != nil {
		return err
	}
	hdr, err := up.Header()
	if err != nil {
		p.rec.stats.result(err)
		p.rec.notef("%s Subscribe of %q: %v", p.name, actor, err)
		return err
	}
	if len(hdr) > 0 {
		if err := ss.SendHeader(hdr); err != nil {
			return err
		}
	}
	p.rec.stats.streams(p.name, 1)
	defer p.rec.stats.streams(p.name, -1)
	for {
		// A new buffer for every message: gRPC may still be writing the
		// last one to the client after SendMsg returns, and the trace
		// keeps it until it is written.
		var m transport.RawMsg
		if err := up.RecvMsg(&m); err != nil {
			ss.SetTrailer(up.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ss.Context().Err() == nil {
				p.rec.stats.result(err)
			}
			return err
		}
		p.rec.event(p.stream, actor, m.B, true)
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}

// subscriber is the actor a SubscriptionRequest names: the cluster on the
// broker port, the source on the source port ("" when it does not parse).
func subscriber(b []byte, f format.Flow) string {
	var req pbv1.SubscriptionRequest
	if proto.Unmarshal(b, &req) != nil {
		return ""
	}
	if f == format.FlowAgentSubscribe {
		return req.GetClusterName()
	}
	return req.GetSource()
}

// TagConn gives each client connection its upstream connection.
func (p *port) TagConn(ctx context.Context, _ *grpcstats.ConnTagInfo) context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.shared) > 0 {
		u := p.shared[p.nextSh%len(p.shared)]
		p.nextSh++
		return context.WithValue(ctx, connKey{}, u)
	}
	u := &upConn{}
	p.conns[u] = struct{}{}
	return context.WithValue(ctx, connKey{}, u)
}

// HandleConn closes a client connection's upstream connection with it.
func (p *port) HandleConn(ctx context.Context, s grpcstats.ConnStats) {
	if _, ok := s.(*grpcstats.ConnEnd); !ok {
		return
	}
	if u, _ := ctx.Value(connKey{}).(*upConn); u != nil && len(p.shared) == 0 {
		p.release(u)
	}
}

func (p *port) release(u *upConn) {
	p.mu.Lock()
	delete(p.conns, u)
	p.mu.Unlock()
	u.once.Do(func() {}) // no dial after this
	if u.cc != nil {
		u.cc.Close()
	}
}

// closeAll closes every upstream connection still open.
func (p *port) closeAll() {
	p.mu.Lock()
	all := make([]*upConn, 0, len(p.conns)+len(p.shared))
	for u := range p.conns {
		all = append(all, u)
	}
	all = append(all, p.shared...)
	p.mu.Unlock()
	for _, u := range all {
		p.release(u)
	}
}

func (p *port) TagRPC(ctx context.Context, _ *grpcstats.RPCTagInfo) context.Context { return ctx }
func (p *port) HandleRPC(context.Context, grpcstats.RPCStats)                       {}

var _ grpcstats.Handler = (*port)(nil)

// errUpstream names a port whose upstream address does not parse.
func errUpstream(name, addr string, err error) error {
	return fmt.Errorf("record: --%s-upstream %q: %w", name, addr, err)
}
