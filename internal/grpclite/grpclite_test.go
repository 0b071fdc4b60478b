package grpclite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/testnet"
	"github.com/cereplay/cereplay/internal/testpki"
	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/internal/transport"
)

// The tests run against gRPC-go's own server (Maestro's), with a handler
// for any method: what it does is chosen by the method name.
const (
	mPublish = "/test.T/Publish" // unary: answers an empty message, as Maestro's Publish
	mCheck   = "/test.T/Check"   // unary: the request ends with the SHA-256 of what precedes it
	mFail    = "/test.T/Fail"    // unary: fails with the code and message in the request
	mBlock   = "/test.T/Block"   // unary: waits for the client to give up
	mStream  = "/test.T/Stream"  // stream: sends header, then messages of the sizes in the request
	mRefuse  = "/test.T/Refuse"  // stream: fails before any header (trailers only)
	mForever = "/test.T/Forever" // stream: sends header, then waits for the client to give up
)

type testServer struct {
	addr      string
	srv       *grpc.Server
	checked   atomic.Int64
	cancelled atomic.Int64
}

func startServer(t testing.TB, opts ...grpc.ServerOption) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: lis.Addr().String()}
	ts.srv = grpc.NewServer(append(opts, transport.RawServer(), grpc.UnknownServiceHandler(ts.handle))...)
	go ts.srv.Serve(lis)
	t.Cleanup(ts.srv.Stop)
	return ts
}

func (ts *testServer) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	var req transport.RawMsg
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	switch method {
	case mPublish:
		return ss.SendMsg(&transport.RawMsg{})
	case mCheck:
		b := req.B
		if len(b) < sha256.Size {
			return status.Error(codes.InvalidArgument, "short request")
		}
		body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
		if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
			return status.Errorf(codes.DataLoss, "request of %d bytes garbled", len(b))
		}
		ts.checked.Add(1)
		return ss.SendMsg(&transport.RawMsg{})
	case mFail:
		code := codes.Code(req.B[0])
		return status.Error(code, string(req.B[1:]))
	case mBlock:
		<-ss.Context().Done()
		ts.cancelled.Add(1)
		return ss.Context().Err()
	case mStream:
		if err := ss.SendHeader(metadata.Pairs("subscription-id", "s1")); err != nil {
			return err
		}
		for b := req.B; len(b) >= 4; b = b[4:] {
			n := binary.BigEndian.Uint32(b)
			if err := ss.SendMsg(&transport.RawMsg{B: pattern(int(n))}); err != nil {
				return err
			}
		}
		return nil
	case mRefuse:
		return status.Error(codes.PermissionDenied, "not you")
	case mForever:
		if err := ss.SendHeader(metadata.Pairs("subscription-id", "s2")); err != nil {
			return err
		}
		<-ss.Context().Done()
		ts.cancelled.Add(1)
		return ss.Context().Err()
	}
	return status.Error(codes.Unimplemented, method)
}

// pattern is n bytes that say their length and position.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// checked is a request for mCheck of n bytes in total, split in two parts
// as replay's Publish is (a head, then the event).
func checked(n int) [][]byte {
	body := pattern(n)
	sum := sha256.Sum256(body)
	return [][]byte{body[:n/3], append(body[n/3:], sum[:]...)}
}

func TestInvokeManyConcurrentCallsBeyondTheWindows(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Sizes from 0 to 200 KiB: many are larger than the
				// server's 64 KiB windows and its 16 KiB frames.
				n := (g*50 + i) * 1031 % (200 << 10)
				if err := c.Invoke(ctx, mCheck, checked(n)...); err != nil {
					errs <- fmt.Errorf("call of %d bytes: %w", n, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	wantChecked(t, ts, errs, 400)
}

// wantChecked fails t for each error in errs (closed) and unless the
// server checked want calls.
func wantChecked(t *testing.T, ts *testServer, errs <-chan error, want int64) {
	t.Helper()
	for err := range errs {
		t.Error(err)
	}
	if got := ts.checked.Load(); got != want {
		t.Fatalf("server checked %d calls, want %d", got, want)
	}
}

func TestInvokeReturnsTheServersStatus(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	msg := "100% refused: ünïcode,\nnew line"
	err := c.Invoke(context.Background(), mFail, []byte{byte(codes.FailedPrecondition)}, []byte(msg))
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || st.Message() != msg {
		t.Fatalf("got %v %q, want FailedPrecondition %q", st.Code(), st.Message(), msg)
	}
	err = c.Invoke(context.Background(), "/no.Such/Method", nil)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestInvokeTimesOutAndResetsTheCall(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Invoke(ctx, mBlock, []byte("x")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	testwait.Until(t, "the server to see the call cancelled", func() bool { return ts.cancelled.Load() == 1 })
	// The connection is still good.
	if err := c.Invoke(context.Background(), mCheck, checked(10)...); err != nil {
		t.Fatal(err)
	}
}

func TestStreamDeliversEveryMessageInOrder(t *testing.T) {
	ts := startServer(t)
	// The smallest window: the server must wait for the client's window
	// updates many times over.
	c := NewClient(ts.addr, Options{StreamWindow: defaultWindow, ConnWindow: defaultWindow})
	defer c.Close()
	var sizes []uint32
	for i := range 300 {
		sizes = append(sizes, uint32(i*i*13%(100<<10)))
	}
	sizes = append(sizes, 0, 1, 5, 16<<10-5, 16<<10-4, 16<<10, 1<<20)
	req := make([]byte, 0, 4*len(sizes))
	for _, n := range sizes {
		req = binary.BigEndian.AppendUint32(req, n)
	}
	var got [][]byte
	st, err := c.Stream(context.Background(), mStream, req, func(b []byte) {
		got = append(got, bytes.Clone(b))
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := st.Header("subscription-id"); len(h) != 1 || h[0] != "s1" {
		t.Fatalf("header subscription-id = %q", h)
	}
	if err := st.Wait(); err != io.EOF {
		t.Fatalf("Wait: %v, want io.EOF", err)
	}
	if len(got) != len(sizes) {
		t.Fatalf("got %d messages, want %d", len(got), len(sizes))
	}
	for i, n := range sizes {
		if !bytes.Equal(got[i], pattern(int(n))) {
			t.Fatalf("message %d (%d bytes) differs: got %d bytes", i, n, len(got[i]))
		}
	}
}

func TestStreamRefusedWithTrailersOnly(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	_, err := c.Stream(context.Background(), mRefuse, nil, func([]byte) {})
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "not you" {
		t.Fatalf("got %v", err)
	}
}

// openForever opens an mForever stream on a new server and client, which
// the test's end closes; cancel ends the stream.
func openForever(t *testing.T) (ts *testServer, c *Client, st *Stream, cancel context.CancelFunc) {
	t.Helper()
	ts = startServer(t)
	c = NewClient(ts.addr, Options{})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := c.Stream(ctx, mForever, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	return ts, c, st, cancel
}

func TestStreamEndsWithItsContext(t *testing.T) {
	ts, _, st, cancel := openForever(t)
	cancel()
	if err := st.Wait(); status.Code(err) != codes.Canceled {
		t.Fatalf("Wait: %v, want Canceled", err)
	}
	testwait.Until(t, "the server to see the stream cancelled", func() bool { return ts.cancelled.Load() == 1 })
}

func TestMessageOverTheLimitIsRefused(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{MaxRecvMsgSize: 1000})
	defer c.Close()
	st, err := c.Stream(context.Background(), mStream, binary.BigEndian.AppendUint32(nil, 1001), func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Wait(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Wait: %v, want ResourceExhausted", err)
	}
}

func TestNoServerFailsFastDuringTheBackoff(t *testing.T) {
	addr := testnet.DeadAddr(t)
	c := NewClient(addr, Options{ReconnectMin: time.Hour})
	defer c.Close()
	err := c.Invoke(context.Background(), mCheck, checked(1)...)
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), addr) {
		t.Fatalf("got %v, want Unavailable naming %s", err, addr)
	}
	// A second call does not dial again: the backoff runs for an hour.
	ts := &testServer{}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := grpc.NewServer(transport.RawServer(), grpc.UnknownServiceHandler(ts.handle))
	go srv.Serve(lis)
	defer srv.Stop()
	if err := c.Invoke(context.Background(), mCheck, checked(1)...); status.Code(err) != codes.Unavailable {
		t.Fatalf("during the backoff: %v, want Unavailable", err)
	}
}

func TestConnectionLostThenDialedAgain(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond})
	defer c.Close()
	st, err := c.Stream(context.Background(), mForever, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.Stop()
	if err := st.Wait(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Wait after the server stopped: %v, want Unavailable", err)
	}
	lis, err := net.Listen("tcp", ts.addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := grpc.NewServer(transport.RawServer(), grpc.UnknownServiceHandler(ts.handle))
	go srv.Serve(lis)
	defer srv.Stop()
	testwait.Until(t, "a call on a new connection", func() bool {
		return c.Invoke(context.Background(), mCheck, checked(100)...) == nil
	})
}

func TestGracefulStopLetsCallsFinish(t *testing.T) {
	ts, c, st, cancel := openForever(t)
	stopped := make(chan struct{})
	go func() { ts.srv.GracefulStop(); close(stopped) }()
	// GOAWAY reaches the client: new calls fail, the stream goes on.
	testwait.Until(t, "the GOAWAY", func() bool {
		return status.Code(c.Invoke(context.Background(), mCheck, checked(1)...)) == codes.Unavailable
	})
	select {
	case <-st.s.done:
		t.Fatalf("the stream ended at GOAWAY: %v", st.s.err)
	default:
	}
	cancel()
	if err := st.Wait(); status.Code(err) != codes.Canceled {
		t.Fatalf("Wait: %v", err)
	}
	<-stopped
}

func TestTLSWithBearerToken(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	pair := ca.Issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	stls, err := (transport.ServerTLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}).Config()
	if err != nil {
		t.Fatal(err)
	}
	b := transport.Bearer{Token: "s3cret", Name: "test"}
	ts := startServer(t, grpc.Creds(credentials.NewTLS(stls)), grpc.StreamInterceptor(b.Stream))
	ctls, _, err := (transport.ClientTLS{CAFile: ca.File}).Load()
	if err != nil {
		t.Fatal(err)
	}
	good := NewClient(ts.addr, Options{TLS: ctls, Token: "s3cret"})
	defer good.Close()
	if err := good.Invoke(context.Background(), mCheck, checked(5000)...); err != nil {
		t.Fatalf("right token: %v", err)
	}
	bad := NewClient(ts.addr, Options{TLS: ctls, Token: "wrong"})
	defer bad.Close()
	if err := bad.Invoke(context.Background(), mCheck, checked(5000)...); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v, want Unauthenticated", err)
	}
	plain := NewClient(ts.addr, Options{DialTimeout: 5 * time.Second})
	defer plain.Close()
	if err := plain.Invoke(context.Background(), mCheck, checked(1)...); status.Code(err) != codes.Unavailable {
		t.Fatalf("cleartext to a TLS port: %v, want Unavailable", err)
	}
}

func TestClosedClientRefusesCalls(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	st, err := c.Stream(context.Background(), mForever, nil, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := st.Wait(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if err := c.Invoke(context.Background(), mCheck, checked(1)...); status.Code(err) != codes.Canceled {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestGoCallsEndOnceEach(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ends := map[int]error{}
	for i := range 300 {
		// The first call finds no connection and dials on a goroutine
		// of its own; calls larger than the 64 KiB window wait there too.
		n := i * 997 % (100 << 10)
		wg.Add(1)
		c.Go(mCheck, checked(n), time.Minute, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if _, twice := ends[i]; twice {
				t.Errorf("call %d ended twice", i)
			}
			ends[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	errs := make(chan error, len(ends))
	for i, err := range ends {
		if err != nil {
			errs <- fmt.Errorf("call %d: %w", i, err)
		}
	}
	close(errs)
	wantChecked(t, ts, errs, 300)
}

func TestGoTimesOut(t *testing.T) {
	ts := startServer(t)
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	if err := c.Invoke(context.Background(), mCheck, checked(1)...); err != nil {
		t.Fatal(err) // connected: the next call starts on the caller
	}
	got := make(chan error, 1)
	c.Go(mBlock, [][]byte{[]byte("x")}, 50*time.Millisecond, func(err error) { got <- err })
	if err := <-got; err != ErrTimeout {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	testwait.Until(t, "the server to see the call cancelled", func() bool { return ts.cancelled.Load() == 1 })
	c.Close()
	c.Go(mCheck, checked(1), time.Minute, func(err error) { got <- err })
	if err := <-got; status.Code(err) != codes.Canceled {
		t.Fatalf("after Close: %v", err)
	}
}

// The server's stream limit holds calls back, Invoke's and Go's alike,
// instead of sending streams the server would refuse.
func TestServerStreamLimit(t *testing.T) {
	ts := startServer(t, grpc.MaxConcurrentStreams(2))
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	if err := c.Invoke(context.Background(), mCheck, checked(1)...); err != nil {
		t.Fatal(err) // connected, with the server's settings
	}
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 40 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := c.Invoke(context.Background(), mCheck, checked(i*100)...); err != nil {
				errs <- err
			}
		}()
		c.Go(mCheck, checked(i*100+1), time.Minute, func(err error) {
			if err != nil {
				errs <- err
			}
			wg.Done()
		})
	}
	wg.Wait()
	close(errs)
	wantChecked(t, ts, errs, 81)
}

// A server that stops reading costs the connection after WriteTimeout:
// its calls fail and the goroutine calling Go is not held.
func TestServerThatStopsReading(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	testOver := make(chan struct{})
	defer close(testOver)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Settings with the largest windows, then nothing read at all.
		b := appendFrameHeader(nil, 6, http2.FrameSettings, 0, 0)
		b = appendSetting(b, http2.SettingInitialWindowSize, maxWindow)
		b = appendWindowUpdate(b, 0, maxWindow-defaultWindow)
		_, _ = c.Write(b)
		<-testOver
	}()
	// The listener takes no second connection: a dial after the first is
	// lost times out.
	c := NewClient(lis.Addr().String(), Options{WriteTimeout: 200 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	testwait.Until(t, "a connection with the server's settings", func() bool {
		c.Go(mCheck, checked(1), time.Hour, func(error) {})
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cur != nil
	})
	big := checked(1 << 20)
	ended := make(chan error, 64)
	for range 64 { // far more than the sockets' buffers hold
		c.Go(mCheck, big, time.Hour, func(err error) { ended <- err })
	}
	timedOut := 0
	for range 64 {
		err := <-ended
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call on a server that reads nothing: %v", err)
		}
		if strings.Contains(err.Error(), "write timeout") {
			timedOut++
		}
	}
	if timedOut == 0 {
		t.Fatal("no call says the write timed out")
	}
}

// Every kind of call at once, on one connection under a stream limit and
// gRPC-go's dynamic windows, some cut short by their deadline: each ends,
// and each that succeeds is whole.
func TestMixedCallsAllEnd(t *testing.T) {
	ts := startServer(t, grpc.MaxConcurrentStreams(4))
	c := NewClient(ts.addr, Options{})
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				n := (g*31 + i*977) % (150 << 10)
				switch (g + i) % 4 {
				case 0:
					if err := c.Invoke(context.Background(), mCheck, checked(n)...); err != nil {
						errs <- fmt.Errorf("Invoke of %d bytes: %w", n, err)
					}
				case 1:
					done := make(chan error, 1)
					c.Go(mCheck, checked(n), time.Minute, func(err error) { done <- err })
					if err := <-done; err != nil {
						errs <- fmt.Errorf("Go of %d bytes: %w", n, err)
					}
				case 2:
					done := make(chan error, 1)
					c.Go(mBlock, [][]byte{[]byte("x")}, time.Millisecond, func(err error) { done <- err })
					if err := <-done; err != ErrTimeout {
						errs <- fmt.Errorf("Go that times out: %v", err)
					}
				case 3:
					sizes := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(n)), 7)
					var got []int
					st, err := c.Stream(context.Background(), mStream, sizes, func(b []byte) { got = append(got, len(b)) })
					if err == nil {
						err = st.Wait()
					}
					if err != io.EOF || len(got) != 2 || got[0] != n || got[1] != 7 {
						errs <- fmt.Errorf("stream of %d and 7 bytes: got %v, %v", n, got, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	wantChecked(t, ts, errs, 8*30/2)
}
