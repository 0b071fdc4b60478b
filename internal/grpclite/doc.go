// Package grpclite is a lean gRPC client for the two calls a replay makes
// by the hundred thousand: a unary call whose answer is not needed
// (Publish) and a server stream delivered to a callback (Subscribe). It
// speaks HTTP/2 itself, over TCP or TLS with ALPN h2, and passes message
// bytes through untouched, as transport.RawCodec does for gRPC-go.
//
// It exists because gRPC-go's general machinery costs a replay more than
// the calls themselves: each call is a stream object, a goroutine hop to
// the connection's writer (loopy) and another from its reader to the
// caller. Here the calling goroutine writes its frames itself, and whoever
// finds the connection idle writes for those who queue behind it, so calls
// that come together leave in one system call; a server stream's messages
// are handed to the callback on the connection's reader goroutine, without
// a hop. The reader stays in one RawConn.Read and goes back to the poller
// as soon as a read drains the socket, without the read that meets EAGAIN
// net.Conn.Read makes before every wait. Read buffers are lent from a pool
// only while bytes wait, so thousands of idle agent connections hold none.
//
// client.go has the calls and the connection's life (dial, backoff,
// close); conn.go the HTTP/2 connection: writing frames, flow control,
// and what each frame from the server does; read.go the reader.
//
// What it implements of HTTP/2 and gRPC is what Maestro's gRPC-go server
// needs: the connection preface and settings, flow control in both
// directions, HPACK, PING acknowledgement, GOAWAY, RST_STREAM, trailers
// and trailers-only answers, grpc-status and grpc-message, a bearer token,
// and reconnection with backoff (a call while the backoff runs fails at
// once with Unavailable, as gRPC-go's does). A call the server never
// processed (above a GOAWAY's last stream, or REFUSED_STREAM) is made
// once more on another connection, as gRPC-go's transparent retry does;
// no other call is retried. It does not compress or ping. Errors are gRPC
// status errors (google.golang.org/grpc/status).
package grpclite
