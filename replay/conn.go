package replay

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// TLS holds the client security options shared by every connection. Secrets
// are read from files; their contents are never logged.
type TLS = transport.ClientTLS

// publishRequest wraps marshalled CloudEvent bytes as a PublishRequest
// (field 1, length-delimited) without copying them: the tag and length go
// in head, the event bytes follow.
func publishRequest(ce []byte) *transport.RawMsg {
	head := wire.AppendPublishHead(make([]byte, 0, wire.PublishHeadSize(len(ce))), len(ce))
	return &transport.RawMsg{Head: head, B: ce}
}

// publish sends one marshalled CloudEvent with the Publish RPC. ce must not
// change until publish returns.
func publish(ctx context.Context, cc *grpc.ClientConn, ce []byte) error {
	var resp transport.RawMsg
	return cc.Invoke(ctx, transport.MethodPublish, publishRequest(ce), &resp, transport.RawCall)
}

// subscribe opens a Subscribe stream with the given marshalled
// SubscriptionRequest and waits for the response header, which both
// Maestro servers send first (a stream without it failed to subscribe).
func subscribe(ctx context.Context, cc *grpc.ClientConn, req []byte) (grpc.ClientStream, error) {
	if cc == nil {
		return nil, status.Error(codes.Unavailable, "no connection (the address could not be dialed)")
	}
	st, err := cc.NewStream(ctx, transport.SubscribeDesc, transport.MethodSubscribe, transport.RawCall)
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
		return nil, errors.New("replay: subscribe: no subscription-id header from the server")
	}
	return st, nil
}
