package grpclite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serverBytes is what a server sends for stream 1: response headers, the
// messages, and trailers (with grpc-status code).
func serverBytes(code string, msgs ...[]byte) []byte {
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
	b := appendFrameHeader(nil, len(h), http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1)
	b = append(b, h...)
	for _, m := range msgs {
		b = appendFrameHeader(b, 5+len(m), http2.FrameData, 0, 1)
		b = append(b, 0, byte(len(m)>>24), byte(len(m)>>16), byte(len(m)>>8), byte(len(m)))
		b = append(b, m...)
	}
	b = appendFrameHeader(b, 8, http2.FramePing, 0, 0)
	b = append(b, "12345678"...)
	b = appendWindowUpdate(b, 0, 1000)
	t := block("grpc-status", code, "grpc-message", "a%20b")
	b = appendFrameHeader(b, len(t), http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersEndStream, 1)
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
		if _, err := callPipe(which, in, chunk); err == context.DeadlineExceeded {
			t.Fatalf("the call did not end when the server closed the connection")
		}
	})
}

// callPipe makes a unary call (which even) or a stream (odd) on a client
// whose server sends SETTINGS and then in, and closes. It returns the
// messages the stream got and how the call ended (DeadlineExceeded if it
// did not).
func callPipe(which byte, in []byte, chunk int) ([][]byte, error) {
	client, server := net.Pipe()
	headers := make(chan struct{}) // closed when the call's HEADERS came
	go func() {
		if _, err := io.ReadFull(server, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(nil, server)
		seen := false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				if !seen {
					close(headers)
				}
				if err != io.EOF && err != io.ErrUnexpectedEOF && err != io.ErrClosedPipe {
					// The client sent what HTTP/2 does not allow.
					panic(fmt.Sprintf("the server could not read the client's frames: %v", err))
				}
				return
			}
			if _, ok := f.(*http2.HeadersFrame); ok && !seen {
				seen = true
				close(headers)
			}
		}
	}()
	go func() {
		defer server.Close()
		if _, err := server.Write(appendFrameHeader(nil, 0, http2.FrameSettings, 0, 0)); err != nil {
			return
		}
		<-headers         // answer the call, as a server would
		for len(in) > 0 { // in writes of chunk bytes: frames cut anywhere
			n := min(max(chunk, 1), len(in))
			if _, err := server.Write(in[:n]); err != nil {
				return
			}
			in = in[n:]
		}
	}()
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

// The seeds are whole calls, whether the server's bytes come at once or
// a byte at a time (every frame then spans reads).
func TestPipeServerSeeds(t *testing.T) {
	for _, chunk := range []int{1 << 20, 1, 7} {
		if _, err := callPipe(0, serverBytes("0", nil), chunk); err != nil {
			t.Fatalf("unary call, chunks of %d: %v", chunk, err)
		}
		got, err := callPipe(1, serverBytes("0", []byte("hello"), nil, bytes.Repeat([]byte{7}, 3000)), chunk)
		if err != io.EOF || len(got) != 3 || string(got[0]) != "hello" || len(got[1]) != 0 || len(got[2]) != 3000 {
			t.Fatalf("stream, chunks of %d: %d messages, %v", chunk, len(got), err)
		}
		_, err = callPipe(0, serverBytes("13", []byte("x")), chunk)
		if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "a b" {
			t.Fatalf("failed call, chunks of %d: %v", chunk, err)
		}
	}
	if _, err := callPipe(0, nil, 1); status.Code(err) != codes.Unavailable {
		t.Fatalf("closed at once: %v", err)
	}
}
