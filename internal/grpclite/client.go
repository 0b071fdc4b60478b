package grpclite

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options are a client's connection settings. The zero value of each
// field means its default.
type Options struct {
	// TLS, when set, makes the connection TLS with ALPN h2; nil is
	// cleartext HTTP/2 with prior knowledge, as gRPC-go's insecure
	// credentials.
	TLS *tls.Config
	// Token is sent as "authorization: Bearer <Token>" on every call. It
	// needs TLS.
	Token string
	// UserAgent is the user-agent header (default "cereplay-grpclite").
	UserAgent string
	// StreamWindow and ConnWindow are the receive flow-control windows
	// advertised to the server, per stream and for the connection
	// (default 64 KiB each).
	StreamWindow, ConnWindow uint32
	// ReadBufferSize is the size of the buffers lent to a connection's
	// reads (default and minimum 32 KiB).
	ReadBufferSize int
	// MaxRecvMsgSize limits one received message (default 64 MiB).
	MaxRecvMsgSize int
	// DialTimeout bounds connecting, the TLS handshake and the wait for
	// the server's settings (default 20 s).
	DialTimeout time.Duration
	// WriteTimeout bounds one write to the connection (default 20 s; a
	// write gets between half of it and all of it): a server that reads
	// nothing for that long loses the connection, and its calls fail,
	// rather than holding the goroutine that writes (a pacer calling Go)
	// for ever.
	WriteTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff after a failed
	// connection attempt, during which calls fail at once (defaults 1 s
	// and 120 s, gRPC-go's).
	ReconnectMin, ReconnectMax time.Duration
	// Dial, when set, opens the connection instead of a TCP dial (tests
	// give it in-memory pipes).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (o Options) withDefaults() Options {
	if o.UserAgent == "" {
		o.UserAgent = "cereplay-grpclite"
	}
	if o.StreamWindow < defaultWindow {
		o.StreamWindow = defaultWindow
	}
	if o.ConnWindow < defaultWindow {
		o.ConnWindow = defaultWindow
	}
	o.StreamWindow = min(o.StreamWindow, maxWindow)
	o.ConnWindow = min(o.ConnWindow, maxWindow)
	if o.ReadBufferSize < 32<<10 {
		o.ReadBufferSize = 32 << 10
	}
	if o.MaxRecvMsgSize <= 0 {
		o.MaxRecvMsgSize = 64 << 20
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 20 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 20 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = max(120*time.Second, o.ReconnectMin)
	}
	return o
}

// HTTP/2 window sizes: the protocol's initial window, and its largest.
const (
	defaultWindow = 65535
	maxWindow     = 1<<31 - 1
)

// Client makes calls on one HTTP/2 connection to addr, dialed on first use
// and again after it is lost. It is safe for concurrent use.
type Client struct {
	addr, authority string
	opts            Options
	pool            *bufPool

	mu      sync.Mutex
	cur     *conn         // the connection new calls use; nil when none
	dialing chan struct{} // closed when the dial under way ends
	lastErr error         // why the last dial failed
	retryAt time.Time     // no dial before this (backoff after a failure)
	backoff time.Duration
	closed  bool
}

// NewClient returns a client for addr (host:port). It connects lazily.
func NewClient(addr string, o Options) *Client {
	o = o.withDefaults()
	return &Client{addr: addr, authority: addr, opts: o, pool: poolFor(o.ReadBufferSize), backoff: o.ReconnectMin}
}

// Invoke makes a unary call of method with a request message made of
// parts laid end to end, and discards the answer's message. It returns
// nil or a gRPC status error. The parts must not change until it returns.
// A call the server never processed (a GOAWAY's, or REFUSED_STREAM) is
// made once more, on another connection, as gRPC-go does.
func (c *Client) Invoke(ctx context.Context, method string, parts ...[]byte) error {
	again, err := c.invoke(ctx, method, parts)
	if again {
		_, err = c.invoke(ctx, method, parts)
	}
	return err
}

// invoke makes one attempt of Invoke and says whether the call may be
// made again.
func (c *Client) invoke(ctx context.Context, method string, parts [][]byte) (again bool, err error) {
	cn, err := c.get(ctx)
	if err != nil {
		return false, err
	}
	s := newStream(c.opts.MaxRecvMsgSize, nil)
	if err := cn.open(ctx, s, method, parts); err != nil {
		return err == errGoingAway, err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		cn.cancel(s, fromContext(ctx))
		<-s.done
	}
	return s.unprocessed, s.err
}

// ErrTimeout is the error Go's done gets for a call that had no answer
// within its timeout (the call is reset). Compare with ==.
var ErrTimeout = status.Error(codes.DeadlineExceeded, "grpclite: no answer within the call's timeout")

// Go starts a unary call as Invoke does, but returns as soon as the
// request is queued on the connection; done runs once, when the call
// ends, with the error Invoke would return (or ErrTimeout): on the
// connection's reader goroutine, on the timeout's timer, or on the
// calling goroutine when the call cannot start. done must not block. The
// parts must not change until done runs. A call that would wait (for a
// connection being dialed, or for flow-control window) waits on a
// goroutine of its own, never on the caller's: a pacer that calls Go is
// never held up.
func (c *Client) Go(method string, parts [][]byte, timeout time.Duration, done func(error)) {
	c.mu.Lock()
	cn := c.cur
	closed := c.closed
	c.mu.Unlock()
	if closed {
		done(errClosed)
		return
	}
	if cn != nil && cn.openNow(newAsyncStream(c.opts.MaxRecvMsgSize, method, parts, timeout, done), method, parts) {
		return
	}
	c.goWaiting(method, parts, timeout, done)
}

// goWaiting is Go for a call that may have to wait: Invoke, on a
// goroutine of its own.
func (c *Client) goWaiting(method string, parts [][]byte, timeout time.Duration, done func(error)) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.Invoke(ctx, method, parts...)
		if ctx.Err() == context.DeadlineExceeded && status.Code(err) == codes.DeadlineExceeded {
			err = ErrTimeout
		}
		cancel()
		done(err)
	}()
}

// Stream opens a server-streaming call of method with request req and
// returns once the server has sent its response headers. Each message the
// server sends then goes to onMsg, on the connection's reader goroutine:
// onMsg must not keep the bytes, and must not block for long, since the
// connection's other calls wait for it. The stream ends when ctx does,
// when the server ends it, or when the connection is lost.
func (c *Client) Stream(ctx context.Context, method string, req []byte, onMsg func([]byte)) (*Stream, error) {
	cn, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	s := newStream(c.opts.MaxRecvMsgSize, onMsg)
	s.headerReady = make(chan struct{})
	if err := cn.open(ctx, s, method, [][]byte{req}); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { cn.cancel(s, fromContext(ctx)) })
	select {
	case <-s.headerReady:
	case <-s.done:
		select {
		case <-s.headerReady: // and ended since: Wait says how
		default:
			stop()
			return nil, s.err
		}
	}
	return &Stream{s: s, stop: stop}, nil
}

// Stream is an open server stream.
type Stream struct {
	s    *stream
	stop func() bool
}

// Header returns the values of a response header (lower-case key).
func (st *Stream) Header(key string) []string { return st.s.header[key] }

// Wait blocks until the stream ends and returns why: io.EOF when the
// server ended it with status OK, else a gRPC status error.
func (st *Stream) Wait() error {
	<-st.s.done
	st.stop()
	return st.s.err
}

// Close ends every call and the connection; calls made after it fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cn := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cn != nil {
		cn.fail(errClosed)
	}
	return nil
}

// errClosed is a call made on a closed client.
var errClosed = status.Error(codes.Canceled, "grpclite: client closed")

// get returns a connection that takes new calls, dialing one if needed.
// While the backoff after a failed dial runs, it fails at once.
func (c *Client) get(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	for {
		if c.closed {
			c.mu.Unlock()
			return nil, errClosed
		}
		if cn := c.cur; cn != nil && cn.takesCalls() {
			c.mu.Unlock()
			return cn, nil
		}
		if ch := c.dialing; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fromContext(ctx)
			}
			c.mu.Lock()
			if c.cur == nil && c.lastErr != nil {
				err := c.lastErr
				c.mu.Unlock()
				return nil, status.Error(codes.Unavailable, err.Error())
			}
			continue
		}
		if time.Now().Before(c.retryAt) {
			err := c.lastErr
			c.mu.Unlock()
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		ch := make(chan struct{})
		c.dialing, c.cur = ch, nil
		go c.dial(ch)
	}
}

// dial connects, records the outcome for get and closes ch.
func (c *Client) dial(ch chan struct{}) {
	cn, err := c.connect()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(ch)
	c.dialing = nil
	if err != nil {
		c.lastErr = fmt.Errorf("connection to %s: %w", c.addr, err)
		// gRPC-go's backoff: jittered by ±20 %, growing 1.6 times.
		c.retryAt = time.Now().Add(time.Duration(float64(c.backoff) * (0.8 + 0.4*rand.Float64())))
		c.backoff = min(time.Duration(float64(c.backoff)*1.6), c.opts.ReconnectMax)
		return
	}
	if c.closed {
		go cn.fail(errClosed)
		return
	}
	c.cur, c.lastErr, c.backoff = cn, nil, c.opts.ReconnectMin
}

// connect dials, shakes hands and waits for the server's settings.
func (c *Client) connect() (*conn, error) {
	deadline := time.Now().Add(c.opts.DialTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	dial := c.opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	nc, err := dial(ctx, c.addr)
	if err != nil {
		return nil, err
	}
	if c.opts.TLS != nil {
		cfg := c.opts.TLS.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(c.addr); err == nil {
				cfg.ServerName = host
			}
		}
		cfg.NextProtos = []string{"h2"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			nc.Close()
			return nil, fmt.Errorf("the server did not agree to HTTP/2 over TLS (ALPN %q)", p)
		}
		nc = tc
	}
	cn := newConn(c, nc)
	if err := cn.start(deadline); err != nil {
		return nil, err
	}
	return cn, nil
}

// drop forgets cn once it can take no more calls.
func (c *Client) drop(cn *conn) {
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.mu.Unlock()
}

// fromContext is the status of a call ended by its context.
func fromContext(ctx context.Context) error {
	return status.FromContextError(ctx.Err()).Err()
}

// pools holds one buffer pool per read buffer size, shared by every
// client of the process.
var pools sync.Map // int -> *bufPool

func poolFor(size int) *bufPool {
	if p, ok := pools.Load(size); ok {
		return p.(*bufPool)
	}
	p, _ := pools.LoadOrStore(size, newBufPool(size))
	return p.(*bufPool)
}
