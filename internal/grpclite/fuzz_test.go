package grpclite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serverBytes is what a server sends for stream 1: response headers, the
// messages, and trailers (with grpc-status code).
func serverBytes(code string, msgs ...[]byte) []byte { return serverBytesOn(1, code, msgs...) }

// serverBytesOn is serverBytes for stream id.
func serverBytesOn(id uint32, code string, msgs ...[]byte) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	h := block(":status", "200", "content-type", "application/grpc", "subscription-id", "x")
	b := appendFrameHeader(nil, len(h), http2.FrameHeaders, http2.FlagHeadersEndHeaders, id)
	b = append(b, h...)
	for _, m := range msgs {
		b = appendFrameHeader(b, 5+len(m), http2.FrameData, 0, id)
		b = append(b, 0, byte(len(m)>>24), byte(len(m)>>16), byte(len(m)>>8), byte(len(m)))
		b = append(b, m...)
	}
	b = appendFrameHeader(b, 8, http2.FramePing, 0, 0)
	b = append(b, "12345678"...)
	b = appendWindowUpdate(b, 0, 1000)
	t := block("grpc-status", code, "grpc-message", "a%20b")
	b = appendFrameHeader(b, len(t), http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, id)
	return append(b, t...)
}

// FuzzServerBytes feeds the client whatever a server might send after its
// SETTINGS, during a call, in writes of any size (which/2 bytes, or all at
// once): the client must end the call, never panic nor hang.
func FuzzServerBytes(f *testing.F) {
	f.Add(byte(0), serverBytes("0", nil))
	f.Add(byte(1), serverBytes("0", []byte("hello"), nil, bytes.Repeat([]byte{7}, 3000)))
	f.Add(byte(1), serverBytes("13", []byte("x")))
	f.Add(byte(0), []byte{0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8})             // RST_STREAM(CANCEL)
	f.Add(byte(0), []byte{0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // GOAWAY
	f.Fuzz(func(t *testing.T, which byte, in []byte) {
		chunk := int(which / 2) // the server's writes, in bytes; 0: all at once
		if chunk == 0 {
			chunk = len(in)
		}
		if _, err := callPipe(which, in, chunk, true); err == context.DeadlineExceeded {
			t.Fatalf("the call did not end when the server closed the connection")
		}
	})
}

// callPipe makes a unary call (which even) or a stream (odd) on a client
// whose server (pipeServer) sends SETTINGS and then in, and closes if
// closeAfter. It returns the messages the stream got and how the call
// ended (DeadlineExceeded if it did not). A server that closes may do so
// while the client still writes its request, and then the call may fail
// whatever in says: only the fuzz target, which checks that calls end,
// closes.
func callPipe(which byte, in []byte, chunk int, closeAfter bool) ([][]byte, error) {
	client := pipeServer(in, chunk, closeAfter)
	c := NewClient("fuzz:1", Options{
		Dial:        func(context.Context, string) (net.Conn, error) { return client, nil },
		DialTimeout: 2 * time.Second,
	})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var got [][]byte
	var err error
	if which%2 == 0 {
		err = c.Invoke(ctx, "/f.F/Unary", []byte("request"))
	} else {
		var st *Stream
		if st, err = c.Stream(ctx, "/f.F/Stream", []byte("request"), func(b []byte) { got = append(got, bytes.Clone(b)) }); err == nil {
			err = st.Wait()
		}
	}
	if ctx.Err() != nil {
		return got, context.DeadlineExceeded
	}
	return got, err
}

// pipeServer is a server on a pipe, whose client end it returns: it sends
// SETTINGS, answers the first call's HEADERS with in (in writes of chunk
// bytes: frames cut anywhere), and then either closes (closeAfter) or
// answers every later call with a whole OK answer on its stream. It also
// checks that what the client sends is HTTP/2.
func pipeServer(in []byte, chunk int, closeAfter bool) net.Conn {
	client, server := net.Pipe()
	calls := make(chan uint32, 64) // the stream of each call's HEADERS
	go func() {
		defer close(calls)
		if _, err := io.ReadFull(server, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(nil, server)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && err != io.ErrClosedPipe {
					// The client sent what HTTP/2 does not allow.
					panic(fmt.Sprintf("the server could not read the client's frames: %v", err))
				}
				return
			}
			if h, ok := f.(*http2.HeadersFrame); ok {
				calls <- h.StreamID
			}
		}
	}()
	go func() {
		defer server.Close()
		if _, err := server.Write(appendFrameHeader(nil, 0, http2.FrameSettings, 0, 0)); err != nil {
			return
		}
		<-calls           // answer the call, as a server would
		for len(in) > 0 { // in writes of chunk bytes: frames cut anywhere
			n := min(max(chunk, 1), len(in))
			if _, err := server.Write(in[:n]); err != nil {
				return
			}
			in = in[n:]
		}
		if closeAfter {
			return
		}
		for id := range calls {
			if _, err := server.Write(serverBytesOn(id, "0", nil)); err != nil {
				return
			}
		}
	}()
	return client
}

// The seeds are whole calls, whether the server's bytes come at once or
// a byte at a time (every frame then spans reads).
func TestPipeServerSeeds(t *testing.T) {
	for _, chunk := range []int{1 << 20, 1, 7} {
		if _, err := callPipe(0, serverBytes("0", nil), chunk, false); err != nil {
			t.Fatalf("unary call, chunks of %d: %v", chunk, err)
		}
		got, err := callPipe(1, serverBytes("0", []byte("hello"), nil, bytes.Repeat([]byte{7}, 3000)), chunk, false)
		if err != io.EOF || len(got) != 3 || string(got[0]) != "hello" || len(got[1]) != 0 || len(got[2]) != 3000 {
			t.Fatalf("stream, chunks of %d: %d messages, %v", chunk, len(got), err)
		}
		_, err = callPipe(0, serverBytes("13", []byte("x")), chunk, false)
		if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "a b" {
			t.Fatalf("failed call, chunks of %d: %v", chunk, err)
		}
	}
	if _, err := callPipe(0, nil, 1, true); status.Code(err) != codes.Unavailable {
		t.Fatalf("closed at once: %v", err)
	}
}

// A call the server refuses unprocessed (GOAWAY below its stream, or
// REFUSED_STREAM) is made again on a new connection, once: Invoke's and
// Go's alike.
func TestUnprocessedCallsAreMadeAgain(t *testing.T) {
	var goaway []byte
	goaway = appendFrameHeader(goaway, 8, http2.FrameGoAway, 0, 0)
	goaway = append(goaway, 0, 0, 0, 0, 0, 0, 0, 0) // last stream 0, NO_ERROR
	refused := appendFrameHeader(nil, 4, http2.FrameRSTStream, 0, 1)
	refused = append(refused, 0, 0, 0, byte(http2.ErrCodeRefusedStream))
	for name, first := range map[string][]byte{"GOAWAY": goaway, "REFUSED_STREAM": refused} {
		for _, async := range []bool{false, true} {
			// The first connection refuses its first call and answers
			// the others; the next connections answer every call.
			var dials atomic.Int32
			c := NewClient("retry:1", Options{Dial: func(context.Context, string) (net.Conn, error) {
				if dials.Add(1) == 1 {
					return pipeServer(first, 1<<20, false), nil
				}
				return pipeServer(serverBytes("0", nil), 1<<20, false), nil
			}})
			var err error
			if !async {
				err = c.Invoke(context.Background(), "/f.F/Unary", []byte("request"))
			} else if _, err = c.get(context.Background()); err == nil {
				done := make(chan error, 1) // connected: Go starts the call itself
				c.Go("/f.F/Unary", [][]byte{[]byte("request")}, time.Minute, func(err error) { done <- err })
				err = <-done
			}
			c.Close()
			if err != nil {
				t.Errorf("%s, Go %v: %v after %d connections", name, async, err, dials.Load())
			}
		}
	}
}
