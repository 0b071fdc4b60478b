package transport

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// The two RPCs of io.cloudevents.v1.CloudEventService (PROTOCOL.md §2).
const (
	MethodPublish   = "/io.cloudevents.v1.CloudEventService/Publish"
	MethodSubscribe = "/io.cloudevents.v1.CloudEventService/Subscribe"
)

// SubscribeDesc describes the server-streaming Subscribe RPC.
var SubscribeDesc = &grpc.StreamDesc{StreamName: "Subscribe", ServerStreams: true}

// RawMsg is a protobuf message kept as its wire bytes: cereplay sends trace
// bytes as they are and parses received events with maestro.ExtractKeys,
// never decoding them fully.
type RawMsg struct {
	// Head goes on the wire before B: for example the tag and length that
	// make a CloudEvent's bytes a PublishRequest, so the event is never
	// copied to wrap it.
	Head []byte
	B    []byte
}

// RawCodec passes RawMsg bytes through gRPC untouched. The content type
// stays application/grpc (ForceCodecV2 does not change it), so peers decode
// the bytes with their usual protobuf codec.
type RawCodec struct{}

var _ encoding.CodecV2 = RawCodec{}

// Marshal returns the message's bytes, Head first, without copying them.
func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*RawMsg)
	if !ok {
		return nil, fmt.Errorf("transport: raw codec cannot marshal %T", v)
	}
	if len(m.Head) == 0 {
		return mem.BufferSlice{mem.SliceBuffer(m.B)}, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(m.Head), mem.SliceBuffer(m.B)}, nil
}

// Unmarshal copies the message into m.B, reusing its capacity: a stream
// that receives into one RawMsg allocates only when a message is bigger
// than any before it (gRPC frees data after Unmarshal, so it must be
// copied), and must be done with the previous message's bytes.
func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*RawMsg)
	if !ok {
		return fmt.Errorf("transport: raw codec cannot unmarshal into %T", v)
	}
	m.B = m.B[:0]
	for _, buf := range data {
		m.B = append(m.B, buf.ReadOnlyData()...)
	}
	return nil
}

// Name is "proto": the codec stands in for the protobuf one.
func (RawCodec) Name() string { return "proto" }

// RawCall makes a client call send and receive RawMsg values.
var RawCall = grpc.ForceCodecV2(RawCodec{})

// RawServer makes a server send and receive RawMsg values on every call.
func RawServer() grpc.ServerOption { return grpc.ForceServerCodecV2(RawCodec{}) }
