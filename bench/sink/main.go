// Command sink is the counting gRPC server of bench/ghz.sh: it serves
// io.cloudevents.v1.CloudEventService on a loopback port, answers every
// Publish with an empty OK and counts it, and holds every Subscribe stream
// open (after the subscription-id header a replayer waits for) until its
// client goes. Nothing is decoded or forwarded, so the server costs little
// and the same per call whoever calls it: a client's throughput against it
// is the client's own.
//
// It prints "sink ADDR" once it listens, and on SIGINT or SIGTERM one line
// of totals, for the script to check that every call arrived:
//
//	publish CALLS bytes BYTES subscribe STREAMS cpu SECONDS
//
// BYTES counts the PublishRequests' bytes, so BYTES/CALLS shows that two
// clients sent messages of the same size; cpu is the sink's own CPU time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/cputime"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
}

// run serves on listen until ctx ends, then prints the totals to out.
func run(ctx context.Context, listen string, out io.Writer) error {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	// Maestro's source port options, as sim's source port has: both
	// clients meet the same server.
	opts, err := transport.ServerOptions(64<<20, transport.ServerTLS{})
	if err != nil {
		return err
	}
	opts = append(opts, transport.SourcePortOptions()...)
	srv := grpc.NewServer(append(opts, transport.RawServer())...)
	s := &sink{}
	srv.RegisterService(s.desc(), s)
	fmt.Fprintf(out, "sink %s\n", lis.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	// Stop, not GracefulStop: the Subscribe streams stay open until their
	// clients go, and a client may still be connected.
	srv.Stop()
	<-served
	fmt.Fprintf(out, "publish %d bytes %d subscribe %d cpu %.3f\n",
		s.calls.Load(), s.bytes.Load(), s.subscribes.Load(), cputime.Process().Seconds())
	return nil
}

// sink counts what it serves.
type sink struct {
	calls, bytes, subscribes atomic.Int64
	ids                      atomic.Int64
	msgs                     sync.Pool // *transport.RawMsg, reused by Publish
	empty                    transport.RawMsg
}

// desc describes CloudEventService with raw-bytes handlers, so no
// request is decoded.
func (s *sink) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "io.cloudevents.v1.CloudEventService",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Publish", Handler: s.publish}},
		Streams:     []grpc.StreamDesc{{StreamName: "Subscribe", Handler: s.subscribe, ServerStreams: true}},
	}
}

// publishTag starts a PublishRequest: field 1 (event), length-delimited.
const publishTag = 0x0a

// publish counts one PublishRequest and answers an empty OK. A request
// that is not a PublishRequest with an event is refused, so a client
// sending something else is not counted as sending specs.
func (s *sink) publish(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	m, _ := s.msgs.Get().(*transport.RawMsg)
	if m == nil {
		m = &transport.RawMsg{}
	}
	defer s.msgs.Put(m)
	if err := dec(m); err != nil {
		return nil, err
	}
	if len(m.B) == 0 || m.B[0] != publishTag {
		return nil, status.Error(codes.InvalidArgument, "sink: not a PublishRequest with an event")
	}
	s.calls.Add(1)
	s.bytes.Add(int64(len(m.B)))
	return &s.empty, nil
}

// subscribe reads the SubscriptionRequest, sends the subscription-id
// header a client waits for, and holds the stream open until the client
// goes (or the server stops).
func (s *sink) subscribe(_ any, stream grpc.ServerStream) error {
	var req transport.RawMsg
	if err := stream.RecvMsg(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "sink: Subscribe without a SubscriptionRequest")
		}
		return err
	}
	id := "sink-" + strconv.FormatInt(s.ids.Add(1), 10)
	if err := stream.SendHeader(metadata.Pairs(maestro.SubscriptionIDHeader, id)); err != nil {
		return err
	}
	s.subscribes.Add(1)
	<-stream.Context().Done()
	return nil
}
