package grpclite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits this client holds the server to.
const (
	maxFrameSize      = 16 << 10 // the default; the client advertises no other
	maxHeaderListSize = 1 << 20
	frameHeaderLen    = 9
	maxStreamID       = 1<<31 - 1
)

// conn is one HTTP/2 connection. Writers append frames to wbuf under wmu
// and one of them, the flusher, writes for all; the reader goroutine reads
// frames, completes calls and queues the frames HTTP/2 asks of it (acks,
// window updates), which it flushes when it has nothing left to read.
type conn struct {
	cl *Client
	nc net.Conn

	// Under wmu: the write side.
	wmu       sync.Mutex
	wbuf      *[]byte   // frames waiting to be written; nil when none
	flushing  bool      // a writer is in nc.Write and writes what others add
	wdeadline time.Time // the write deadline set (the flusher's)
	henc      *hpack.Encoder
	hbuf      bytes.Buffer
	nextID    uint32
	sendWin   int64 // the connection's send window
	// The peer's settings (peerMaxStreams is under mu).
	peerFrame   int
	peerInitWin int64
	// wake is closed and replaced when a window grows, a stream ends or
	// the settings change, for writers waiting on one (waiters counts
	// them; nobody pays for the channel when nobody waits).
	wake    chan struct{}
	waiters atomic.Int32
	// slotFreed wakes a writer waiting for the server's stream limit
	// when a call ends (a call may end under wmu, so it cannot use
	// wake). Every end under a limit signals it and every writer that
	// takes a slot passes the signal on, so none is lost.
	slotFreed   chan struct{}
	slotWaiters atomic.Int32

	// Under mu: the calls.
	mu             sync.Mutex
	streams        map[uint32]*stream
	peerMaxStreams uint32
	goaway         bool  // the server said GOAWAY: no new streams
	err            error // why the connection is dead; set once
	done           chan struct{}

	// The reader goroutine's own.
	ready       chan struct{} // closed at the server's first SETTINGS
	gotSettings bool
	recvUnacked int64 // connection bytes received since our last WINDOW_UPDATE
	ctlQueued   bool  // frames queued that no flush has taken yet
	hdec        *hpack.Decoder
	fields      []hpack.HeaderField
	fieldsSize  int
	hblock      []byte // a header block gathered from HEADERS and CONTINUATION
	hstream     uint32 // the stream of the block being gathered; 0 when none
	hflags      http2.Flags
	pending     *[]byte // a frame cut by the end of a read; nil when none
}

func newConn(cl *Client, nc net.Conn) *conn {
	cn := &conn{
		cl: cl, nc: nc,
		nextID:         1,
		sendWin:        defaultWindow,
		peerFrame:      maxFrameSize,
		peerInitWin:    defaultWindow,
		peerMaxStreams: ^uint32(0),
		wake:           make(chan struct{}),
		slotFreed:      make(chan struct{}, 1),
		streams:        map[uint32]*stream{},
		done:           make(chan struct{}),
		ready:          make(chan struct{}),
	}
	cn.henc = hpack.NewEncoder(&cn.hbuf)
	cn.hdec = hpack.NewDecoder(4096, cn.emitField)
	cn.hdec.SetMaxStringLength(maxHeaderListSize)
	return cn
}

// start sends the preface and settings, starts the reader and waits for
// the server's settings.
func (cn *conn) start(deadline time.Time) error {
	o := cn.cl.opts
	b := append([]byte(nil), http2.ClientPreface...)
	b = appendFrameHeader(b, 18, http2.FrameSettings, 0, 0)
	b = appendSetting(b, http2.SettingEnablePush, 0)
	b = appendSetting(b, http2.SettingInitialWindowSize, o.StreamWindow)
	b = appendSetting(b, http2.SettingMaxHeaderListSize, maxHeaderListSize)
	if o.ConnWindow > defaultWindow {
		b = appendWindowUpdate(b, 0, o.ConnWindow-defaultWindow)
	}
	_ = cn.nc.SetWriteDeadline(deadline)
	if _, err := cn.nc.Write(b); err != nil {
		cn.nc.Close()
		return err
	}
	_ = cn.nc.SetWriteDeadline(time.Time{})
	go cn.readLoop()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-cn.ready:
		return nil
	case <-cn.done:
		return cn.err
	case <-t.C:
		err := fmt.Errorf("no HTTP/2 settings from the server within %v (is it a gRPC port?)", cn.cl.opts.DialTimeout)
		cn.fail(err)
		return err
	}
}

// takesCalls reports whether new calls may use the connection.
func (cn *conn) takesCalls() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err == nil && !cn.goaway
}

// stream is one call. id and sendWin belong to the write side (wmu), the
// receive state to the reader goroutine; err is set once, by whoever
// removes the stream from the connection's map, before done closes.
type stream struct {
	id      uint32
	sendWin int64
	ended   atomic.Bool // the call is over: stop sending its data

	onMsg       func([]byte) // nil for a unary call: its answer is dropped
	maxRecv     int
	gotHeaders  bool
	header      map[string][]string
	headerReady chan struct{} // for server streams: closed at the response headers
	msgs        int           // messages received
	recvUnacked int64
	prefix      [5]byte
	prefixN     int
	need        int    // length of the message being gathered
	got         int    // bytes of it so far
	body        []byte // the message, when it spans frames and has a reader

	err         error
	unprocessed bool          // the server never processed the call (set with err)
	done        chan struct{} // nil for a call started by Go: onDone runs instead
	// What follows belongs to a call started by Go: method and parts
	// make it again when the server did not process it.
	onDone  func(error)
	timeout time.Duration
	timer   *time.Timer
	method  string
	parts   [][]byte
}

func newStream(maxRecv int, onMsg func([]byte)) *stream {
	return &stream{onMsg: onMsg, maxRecv: maxRecv, done: make(chan struct{})}
}

func newAsyncStream(maxRecv int, method string, parts [][]byte, timeout time.Duration, onDone func(error)) *stream {
	return &stream{maxRecv: maxRecv, method: method, parts: parts, timeout: timeout, onDone: onDone}
}

// over runs what waits for the end of s, which finish or fail has
// recorded: a call of Go's the server did not process is made again, as
// Invoke does. Call without locks.
func (cn *conn) over(s *stream) {
	if s.done != nil {
		close(s.done)
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.unprocessed {
		cn.cl.goWaiting(s.method, s.parts, s.timeout, s.onDone)
		return
	}
	s.onDone(s.err)
}

// open starts a call: it sends the request headers and the message, as
// the windows allow.
func (cn *conn) open(ctx context.Context, s *stream, method string, parts [][]byte) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	for {
		admitted, full, err := cn.admitLocked(s, 0)
		if admitted {
			break
		}
		if !full {
			return err
		}
		if err := cn.waitLocked(ctx, cn.slotFreed); err != nil {
			return err
		}
	}
	if cn.slotWaiters.Load() > 0 {
		cn.freeSlot() // there may be room for another
	}
	cn.appendHeaders(s.id, method)
	if err := cn.appendMessage(ctx, s, parts); err != nil {
		// As reset does, under wmu held; a call of Invoke's has no
		// callback to run outside it.
		if e := cn.end(s, err, false); e.ok {
			cn.appendRST(s.id, http2.ErrCodeCancel)
			cn.ended(s, e)
		}
	}
	cn.flushLocked()
	return nil
}

// admitLocked gives s the next stream id and makes it one of the
// connection's calls, if the connection takes it now: it is alive, not
// going away, under the server's stream limit (else full) and, when
// size > 0, has the window for size bytes. A call of Go's gets its timer
// here, before anything can end it. Call with wmu held.
func (cn *conn) admitLocked(s *stream, size int64) (admitted, full bool, err error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	switch {
	case cn.err != nil:
		return false, false, unavailable(cn.err)
	case cn.goaway || cn.nextID > maxStreamID:
		defer func() { go cn.goAway() }() // it takes locks held here
		return false, false, errGoingAway
	case uint32(len(cn.streams)) >= cn.peerMaxStreams:
		return false, true, nil
	case size > 0 && (size > cn.sendWin || size > cn.peerInitWin):
		return false, false, nil
	}
	s.id = cn.nextID
	cn.nextID += 2
	s.sendWin = cn.peerInitWin
	if s.onDone != nil {
		s.timer = time.AfterFunc(s.timeout, func() { cn.cancel(s, ErrTimeout) }) // it waits for mu
	}
	cn.streams[s.id] = s
	return true, false, nil
}

// errGoingAway is a call refused before it was sent: its connection takes
// no new calls. Invoke tries it again on another.
var errGoingAway = status.Error(codes.Unavailable, "grpclite: the connection takes no new calls (GOAWAY)")

// waitLocked waits, with wmu released, until a window grows, a stream
// ends under a limit (when slot is cn.slotFreed; nil waits for no slot)
// or the settings change. The caller checks its condition again after it.
// It first writes what is queued; if that released wmu, it returns at
// once instead of waiting: what the caller waits for may have come
// meanwhile, and waiting for the next one would be waiting for ever.
func (cn *conn) waitLocked(ctx context.Context, slot chan struct{}) error {
	if cn.flushLocked() {
		return nil
	}
	wake := cn.wake
	cn.waiters.Add(1)
	if slot != nil {
		cn.slotWaiters.Add(1)
	}
	cn.wmu.Unlock()
	defer func() {
		cn.wmu.Lock()
		cn.waiters.Add(-1)
		if slot != nil {
			cn.slotWaiters.Add(-1)
		}
	}()
	select {
	case <-slot:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return fromContext(ctx)
	case <-cn.done:
		return unavailable(cn.err)
	}
}

// openNow starts a call of Go's if it can without waiting (admitLocked
// with the request's size) and reports whether it did.
func (cn *conn) openNow(s *stream, method string, parts [][]byte) bool {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if admitted, _, _ := cn.admitLocked(s, int64(5+messageSize(parts))); !admitted {
		return false
	}
	cn.appendHeaders(s.id, method)
	_ = cn.appendMessage(context.Background(), s, parts) // the windows take it: no wait
	cn.flushLocked()
	return true
}

// freeSlot wakes a writer waiting for a stream slot, if none is woken yet.
func (cn *conn) freeSlot() {
	select {
	case cn.slotFreed <- struct{}{}:
	default:
	}
}

// wakeLocked wakes the writers waiting, if any. Call with wmu held.
func (cn *conn) wakeLocked() {
	if cn.waiters.Load() > 0 {
		close(cn.wake)
		cn.wake = make(chan struct{})
	}
}

// appendHeaders appends a call's request headers. Call with wmu held.
func (cn *conn) appendHeaders(id uint32, method string) {
	cn.hbuf.Reset()
	scheme := "http"
	if cn.cl.opts.TLS != nil {
		scheme = "https"
	}
	for _, f := range [...]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: scheme},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: cn.cl.authority},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "user-agent", Value: cn.cl.opts.UserAgent},
		{Name: "te", Value: "trailers"},
	} {
		_ = cn.henc.WriteField(f)
	}
	if tok := cn.cl.opts.Token; tok != "" {
		_ = cn.henc.WriteField(hpack.HeaderField{Name: "authorization", Value: "Bearer " + tok, Sensitive: true})
	}
	block := cn.hbuf.Bytes()
	b := cn.wbufLocked()
	typ, flags := http2.FrameHeaders, http2.Flags(0)
	for {
		n := min(len(block), cn.peerFrame)
		if n == len(block) {
			flags |= http2.FlagHeadersEndHeaders // same bit as CONTINUATION's
		}
		*b = appendFrameHeader(*b, n, typ, flags, id)
		*b = append(*b, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return
		}
		typ, flags = http2.FrameContinuation, 0
	}
}

// appendMessage appends the gRPC message made of parts (after its 5-byte
// prefix) as DATA frames, the last ending the stream, waiting for window
// when it runs out. Call with wmu held.
func (cn *conn) appendMessage(ctx context.Context, s *stream, parts [][]byte) error {
	total := messageSize(parts)
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], uint32(total))
	rest := 5 + total
	cur, pi := prefix[:], -1 // the bytes being copied: prefix, then parts[pi]
	for rest > 0 {
		if s.ended.Load() {
			return nil // the server ended the call; it reads no more
		}
		n := int(min(int64(rest), int64(cn.peerFrame), cn.sendWin, s.sendWin))
		if n <= 0 {
			if err := cn.waitLocked(ctx, nil); err != nil {
				return err
			}
			continue
		}
		var flags http2.Flags
		if n == rest {
			flags = http2.FlagDataEndStream
		}
		b := cn.wbufLocked()
		*b = appendFrameHeader(*b, n, http2.FrameData, flags, s.id)
		cn.sendWin -= int64(n)
		s.sendWin -= int64(n)
		rest -= n
		for n > 0 {
			for len(cur) == 0 {
				pi++
				cur = parts[pi]
			}
			k := min(n, len(cur))
			*b = append(*b, cur[:k]...)
			cur, n = cur[k:], n-k
		}
	}
	return nil
}

// messageSize is the length of a message made of parts.
func messageSize(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// wbufLocked returns the write buffer, borrowing one if none.
func (cn *conn) wbufLocked() *[]byte {
	if cn.wbuf == nil {
		cn.wbuf = writeBufs.Get().(*[]byte)
	}
	return cn.wbuf
}

// writeBufs lends write buffers: a connection holds one only between a
// write being queued and flushed.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// flushLocked writes the queued frames, unless another writer is at it
// (it will write them too). Call with wmu held; it is released during the
// write, and released says whether it was.
func (cn *conn) flushLocked() (released bool) {
	if cn.flushing {
		return false
	}
	cn.flushing = true
	defer func() { cn.flushing = false }()
	for cn.wbuf != nil {
		released = true
		b := cn.wbuf
		cn.wbuf = nil
		cn.wmu.Unlock()
		cn.armWriteDeadline()
		_, err := cn.nc.Write(*b)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("the server read nothing for %v (write timeout): %w", cn.cl.opts.WriteTimeout, err)
		}
		*b = (*b)[:0]
		if cap(*b) <= 256<<10 {
			writeBufs.Put(b)
		}
		cn.wmu.Lock()
		if err != nil {
			cn.wbuf = nil
			go cn.fail(err)
			return true
		}
	}
	return released
}

// armWriteDeadline makes the next write fail if it cannot finish within
// WriteTimeout, give or take half of it: the deadline moves only once
// half of it has passed, since moving it is a timer change in the runtime
// on every write. Only the flusher calls it.
func (cn *conn) armWriteDeadline() {
	now, t := time.Now(), cn.cl.opts.WriteTimeout
	if now.Add(t / 2).Before(cn.wdeadline) {
		return
	}
	cn.wdeadline = now.Add(t)
	_ = cn.nc.SetWriteDeadline(cn.wdeadline)
}

// appendRST queues RST_STREAM. Call with wmu held.
func (cn *conn) appendRST(id uint32, code http2.ErrCode) {
	b := cn.wbufLocked()
	*b = appendFrameHeader(*b, 4, http2.FrameRSTStream, 0, id)
	*b = binary.BigEndian.AppendUint32(*b, uint32(code))
}

// cancel ends a call from the client's side (its context, its timeout)
// and tells the server at once.
func (cn *conn) cancel(s *stream, err error) { cn.reset(s, err, true) }

// reset ends a call the server still has open, with err, and queues
// RST_STREAM(CANCEL) for it in the same hold of wmu: a stream admitted in
// between would reach the server before the reset, while the ended one
// still counts against the server's stream limit (REFUSED_STREAM). The
// reader's resets wait for its next flush (flush false).
func (cn *conn) reset(s *stream, err error, flush bool) {
	cn.wmu.Lock()
	e := cn.end(s, err, false)
	if e.ok {
		cn.appendRST(s.id, http2.ErrCodeCancel)
		if flush {
			cn.flushLocked()
		} else {
			cn.ctlQueued = true
		}
	}
	cn.wmu.Unlock()
	cn.ended(s, e)
}

// finish ends a call with err, unless it has ended already, and reports
// whether this call ended it.
func (cn *conn) finish(s *stream, err error) bool {
	e := cn.end(s, err, false)
	cn.ended(s, e)
	return e.ok
}

// finishUnprocessed ends a call the server says it never processed
// (above a GOAWAY's last stream, or REFUSED_STREAM): it may be made again
// on another connection, as gRPC-go does once.
func (cn *conn) finishUnprocessed(s *stream, err error) {
	cn.ended(s, cn.end(s, err, true))
}

// ending is what end found: whether it ended the call, and what follows.
type ending struct {
	ok      bool // the call was ended by this end
	last    bool // the last call after GOAWAY: the connection closes
	limited bool // the server limits streams: a writer may wait for one
}

// end removes a call from the connection with err, unless it has ended
// already; unprocessed says the server never processed it. ended runs
// what follows, without locks for a call of Go's.
func (cn *conn) end(s *stream, err error, unprocessed bool) ending {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if s.id == 0 || cn.streams[s.id] != s {
		return ending{}
	}
	delete(cn.streams, s.id)
	s.err, s.unprocessed = err, unprocessed
	s.ended.Store(true)
	return ending{ok: true, last: cn.goaway && len(cn.streams) == 0, limited: cn.peerMaxStreams != ^uint32(0)}
}

// ended wakes what waits for the call's end, after end.
func (cn *conn) ended(s *stream, e ending) {
	if !e.ok {
		return
	}
	cn.over(s)
	if e.last {
		go cn.fail(status.Error(codes.Unavailable, "grpclite: connection closed after GOAWAY"))
	}
	if e.limited {
		cn.freeSlot()
	}
}

// goAway stops new calls on the connection and lets the client dial
// another.
func (cn *conn) goAway() {
	cn.mu.Lock()
	cn.goaway = true
	last := len(cn.streams) == 0
	cn.mu.Unlock()
	cn.cl.drop(cn)
	if last {
		go cn.fail(status.Error(codes.Unavailable, "grpclite: connection closed after GOAWAY"))
	}
}

// fail ends the connection and every call on it with err.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	uerr := unavailable(err)
	lost := make([]*stream, 0, len(cn.streams))
	for id, s := range cn.streams {
		delete(cn.streams, id)
		s.err = uerr
		s.ended.Store(true)
		lost = append(lost, s)
	}
	close(cn.done)
	cn.mu.Unlock()
	for _, s := range lost {
		cn.over(s)
	}
	cn.cl.drop(cn)
	cn.nc.Close()
}

// unavailable is the status of a call lost with its connection.
func unavailable(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unavailable, "grpclite: connection lost: "+err.Error())
}

// connError is an HTTP/2 connection error found in what the server sent.
type connError struct {
	code http2.ErrCode
	why  string
}

func (e connError) Error() string { return fmt.Sprintf("HTTP/2 %v from the server: %s", e.code, e.why) }

func protocolError(format string, a ...any) error {
	return connError{http2.ErrCodeProtocol, fmt.Sprintf(format, a...)}
}

func (cn *conn) onFrame(typ http2.FrameType, flags http2.Flags, id uint32, p []byte) error {
	switch typ {
	case http2.FrameData:
		return cn.onData(flags, id, p)
	case http2.FrameHeaders:
		if id == 0 {
			return protocolError("HEADERS on stream 0")
		}
		p, err := unpad(flags, p)
		if err != nil {
			return err
		}
		if flags.Has(http2.FlagHeadersPriority) {
			if len(p) < 5 {
				return protocolError("HEADERS too short for its priority")
			}
			p = p[5:]
		}
		cn.hstream, cn.hflags = id, flags
		cn.hblock = append(cn.hblock[:0], p...)
		if flags.Has(http2.FlagHeadersEndHeaders) {
			return cn.onHeaderBlock()
		}
	case http2.FrameContinuation:
		if cn.hstream == 0 || id != cn.hstream {
			return protocolError("CONTINUATION without its HEADERS")
		}
		if len(cn.hblock)+len(p) > maxHeaderListSize {
			return protocolError("header block over %d bytes", maxHeaderListSize)
		}
		cn.hblock = append(cn.hblock, p...)
		if flags.Has(http2.FlagContinuationEndHeaders) {
			return cn.onHeaderBlock()
		}
	case http2.FrameRSTStream:
		if id == 0 || len(p) != 4 {
			return protocolError("malformed RST_STREAM")
		}
		code := http2.ErrCode(binary.BigEndian.Uint32(p))
		if s := cn.lookup(id); s != nil {
			err := status.Errorf(rstCode(code), "grpclite: stream reset by the server with %v", code)
			if code == http2.ErrCodeRefusedStream {
				cn.finishUnprocessed(s, err)
			} else {
				cn.finish(s, err)
			}
		}
	case http2.FrameSettings:
		return cn.onSettings(flags, id, p)
	case http2.FramePing:
		if id != 0 || len(p) != 8 {
			return protocolError("malformed PING")
		}
		if !flags.Has(http2.FlagPingAck) {
			var ack [frameHeaderLen + 8]byte
			cn.queue(append(appendFrameHeader(ack[:0], 8, http2.FramePing, http2.FlagPingAck, 0), p...))
		}
	case http2.FrameGoAway:
		if id != 0 || len(p) < 8 {
			return protocolError("malformed GOAWAY")
		}
		last := binary.BigEndian.Uint32(p) & maxStreamID
		code := http2.ErrCode(binary.BigEndian.Uint32(p[4:]))
		cn.goAway()
		err := status.Errorf(codes.Unavailable, "grpclite: the server closed the connection (GOAWAY %v %q)", code, p[8:])
		cn.mu.Lock()
		var lost []*stream
		for sid, s := range cn.streams {
			if sid > last {
				lost = append(lost, s)
			}
		}
		cn.mu.Unlock()
		for _, s := range lost {
			cn.finishUnprocessed(s, err)
		}
	case http2.FrameWindowUpdate:
		if len(p) != 4 {
			return protocolError("malformed WINDOW_UPDATE")
		}
		inc := int64(binary.BigEndian.Uint32(p) & maxStreamID)
		if inc == 0 {
			return protocolError("WINDOW_UPDATE of 0")
		}
		cn.wmu.Lock()
		defer cn.wmu.Unlock()
		if id == 0 {
			if cn.sendWin += inc; cn.sendWin > maxWindow {
				return connError{http2.ErrCodeFlowControl, "connection window over 2^31-1"}
			}
		} else if s := cn.lookup(id); s != nil {
			s.sendWin += inc
		}
		cn.wakeLocked()
	case http2.FramePushPromise:
		return protocolError("PUSH_PROMISE, which the client disabled")
	}
	return nil // PRIORITY and unknown frames are ignored, as HTTP/2 says
}

func (cn *conn) lookup(id uint32) *stream {
	cn.mu.Lock()
	s := cn.streams[id]
	cn.mu.Unlock()
	return s
}

// unpad removes the padding of a DATA or HEADERS frame.
func unpad(flags http2.Flags, p []byte) ([]byte, error) {
	if !flags.Has(http2.FlagDataPadded) { // the same bit in HEADERS
		return p, nil
	}
	if len(p) == 0 || int(p[0]) >= len(p) {
		return nil, protocolError("padding longer than its frame")
	}
	return p[1 : len(p)-int(p[0])], nil
}

func (cn *conn) onSettings(flags http2.Flags, id uint32, p []byte) error {
	if id != 0 {
		return protocolError("SETTINGS on a stream")
	}
	if flags.Has(http2.FlagSettingsAck) {
		if len(p) != 0 {
			return connError{http2.ErrCodeFrameSize, "SETTINGS ack with a payload"}
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connError{http2.ErrCodeFrameSize, "SETTINGS of a length not a multiple of 6"}
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	for ; len(p) > 0; p = p[6:] {
		v := binary.BigEndian.Uint32(p[2:])
		switch http2.SettingID(binary.BigEndian.Uint16(p)) {
		case http2.SettingHeaderTableSize:
			cn.henc.SetMaxDynamicTableSizeLimit(v)
		case http2.SettingMaxConcurrentStreams:
			cn.mu.Lock()
			cn.peerMaxStreams = v
			cn.mu.Unlock()
		case http2.SettingInitialWindowSize:
			if v > maxWindow {
				return connError{http2.ErrCodeFlowControl, "initial window over 2^31-1"}
			}
			delta := int64(v) - cn.peerInitWin
			cn.peerInitWin = int64(v)
			cn.mu.Lock()
			for _, s := range cn.streams {
				s.sendWin += delta
			}
			cn.mu.Unlock()
		case http2.SettingMaxFrameSize:
			if v < 1<<14 || v > 1<<24-1 {
				return protocolError("SETTINGS_MAX_FRAME_SIZE %d", v)
			}
			cn.peerFrame = int(v)
		}
	}
	cn.wakeLocked()
	b := cn.wbufLocked()
	*b = appendFrameHeader(*b, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	cn.ctlQueued = true
	if !cn.gotSettings {
		cn.gotSettings = true
		close(cn.ready)
	}
	return nil
}

// queueWindowUpdate queues a WINDOW_UPDATE for the reader's next flush.
func (cn *conn) queueWindowUpdate(id uint32, inc int64) {
	var f [frameHeaderLen + 4]byte
	cn.queue(appendWindowUpdate(f[:0], id, uint32(inc)))
}

// queue adds a frame the reader owes the server (an ack, a window
// update) to the write buffer, for the reader's next flush.
func (cn *conn) queue(frame []byte) {
	cn.wmu.Lock()
	b := cn.wbufLocked()
	*b = append(*b, frame...)
	cn.wmu.Unlock()
	cn.ctlQueued = true
}

func (cn *conn) onData(flags http2.Flags, id uint32, p []byte) error {
	if id == 0 {
		return protocolError("DATA on stream 0")
	}
	n := int64(len(p))
	if cn.recvUnacked += n; cn.recvUnacked >= int64(cn.cl.opts.ConnWindow)/4 {
		cn.queueWindowUpdate(0, cn.recvUnacked)
		cn.recvUnacked = 0
	}
	data, err := unpad(flags, p)
	if err != nil {
		return err
	}
	s := cn.lookup(id)
	if s == nil {
		return nil // a call already over (cancelled): its data is dropped
	}
	if !s.gotHeaders {
		cn.reset(s, status.Error(codes.Internal, "grpclite: DATA before the response headers"), false)
		return nil
	}
	end := flags.Has(http2.FlagDataEndStream)
	if s.recvUnacked += n; !end && s.recvUnacked >= int64(cn.cl.opts.StreamWindow)/4 {
		cn.queueWindowUpdate(id, s.recvUnacked)
		s.recvUnacked = 0
	}
	if err := s.feed(data); err != nil {
		cn.reset(s, err, false)
		return nil
	}
	if end {
		cn.finish(s, status.Error(codes.Internal, "grpclite: the server ended the stream without trailers"))
	}
	return nil
}

// feed parses gRPC messages out of DATA payloads: a 5-byte prefix (a
// compression flag and a length), then the message. A message that lies
// whole in one payload is handed over in place; one that spans frames is
// gathered first.
func (s *stream) feed(data []byte) error {
	for {
		if s.prefixN < 5 {
			if s.prefixN == 0 && len(data) >= 5 {
				if err := s.startMessage(data[:5]); err != nil {
					return err
				}
				if len(data) >= 5+s.need {
					s.deliver(data[5 : 5+s.need])
					data = data[5+s.need:]
					continue
				}
				s.prefixN, data = 5, data[5:]
			} else {
				k := copy(s.prefix[s.prefixN:], data)
				s.prefixN, data = s.prefixN+k, data[k:]
				if s.prefixN < 5 {
					return nil
				}
				if err := s.startMessage(s.prefix[:]); err != nil {
					return err
				}
			}
		}
		k := min(s.need-s.got, len(data))
		if s.onMsg != nil {
			s.body = append(s.body, data[:k]...)
		}
		s.got, data = s.got+k, data[k:]
		if s.got < s.need {
			return nil
		}
		s.deliver(s.body)
		s.body, s.prefixN = nil, 0
		if len(data) == 0 {
			return nil
		}
	}
}

// startMessage reads a message prefix.
func (s *stream) startMessage(prefix []byte) error {
	if prefix[0] != 0 {
		return status.Error(codes.Internal, "grpclite: compressed message, but the client asked for no compression")
	}
	n := binary.BigEndian.Uint32(prefix[1:])
	if int64(n) > int64(s.maxRecv) {
		return status.Errorf(codes.ResourceExhausted, "grpclite: received message larger than max (%d vs. %d)", n, s.maxRecv)
	}
	s.need, s.got = int(n), 0
	return nil
}

func (s *stream) deliver(msg []byte) {
	s.msgs++
	if s.onMsg != nil {
		s.onMsg(msg)
	}
}

// emitField collects a decoded header field.
func (cn *conn) emitField(f hpack.HeaderField) {
	cn.fieldsSize += int(f.Size())
	if cn.fieldsSize <= maxHeaderListSize {
		cn.fields = append(cn.fields, f)
	}
}

// onHeaderBlock decodes a whole header block (the decoder's table must
// see every block, even of calls already over) and applies it.
func (cn *conn) onHeaderBlock() error {
	id, flags := cn.hstream, cn.hflags
	cn.hstream = 0
	cn.fields, cn.fieldsSize = cn.fields[:0], 0
	if _, err := cn.hdec.Write(cn.hblock); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	if err := cn.hdec.Close(); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	if cn.fieldsSize > maxHeaderListSize {
		return protocolError("header list over %d bytes", maxHeaderListSize)
	}
	s := cn.lookup(id)
	if s == nil {
		return nil
	}
	end := flags.Has(http2.FlagHeadersEndStream)
	if !s.gotHeaders {
		s.gotHeaders = true
		if err := responseError(cn.fields); err != nil {
			if end {
				cn.finish(s, err)
			} else {
				cn.reset(s, err, false) // the server still has it open
			}
			return nil
		}
		if !end {
			if s.headerReady != nil {
				s.header = metadataOf(cn.fields)
				close(s.headerReady)
			}
			return nil
		}
	} else if !end {
		cn.reset(s, status.Error(codes.Internal, "grpclite: trailers that do not end the stream"), false)
		return nil
	}
	cn.finish(s, s.trailerStatus(cn.fields))
	return nil
}

// responseError checks the response headers: HTTP status 200 and a gRPC
// content type, or else the status they stand for.
func responseError(fields []hpack.HeaderField) error {
	httpStatus, ctype, grpcStatus := "", "", false
	for _, f := range fields {
		switch f.Name {
		case ":status":
			httpStatus = f.Value
		case "content-type":
			ctype = f.Value
		case "grpc-status":
			grpcStatus = true
		}
	}
	if httpStatus != "200" {
		if grpcStatus && httpStatus == "" {
			return nil
		}
		if httpStatus == "" {
			return status.Error(codes.Internal, "grpclite: malformed response: no HTTP status")
		}
		code, err := strconv.Atoi(httpStatus)
		if err != nil {
			return status.Errorf(codes.Internal, "grpclite: malformed HTTP status %q", httpStatus)
		}
		return status.Errorf(httpCode(code), "grpclite: unexpected HTTP status %d", code)
	}
	if !grpcStatus && ctype != "application/grpc" && !strings.HasPrefix(ctype, "application/grpc+") && !strings.HasPrefix(ctype, "application/grpc;") {
		return status.Errorf(codes.Unknown, "grpclite: unexpected content-type %q", ctype)
	}
	return nil
}

// trailerStatus is the call's outcome from its trailers: nil (unary) or
// io.EOF (stream) for OK, else the status error.
func (s *stream) trailerStatus(fields []hpack.HeaderField) error {
	code, msg, found := codes.Unknown, "", false
	for _, f := range fields {
		switch f.Name {
		case "grpc-status":
			n, err := strconv.ParseUint(f.Value, 10, 32)
			if err != nil {
				return status.Errorf(codes.Internal, "grpclite: malformed grpc-status %q", f.Value)
			}
			code, found = codes.Code(n), true
		case "grpc-message":
			msg = decodeGRPCMessage(f.Value)
		}
	}
	switch {
	case !found:
		return status.Error(codes.Internal, "grpclite: trailers without grpc-status")
	case code != codes.OK:
		return status.Error(code, msg)
	case s.onMsg != nil:
		return io.EOF
	case s.msgs != 1:
		return status.Errorf(codes.Internal, "grpclite: a unary answer of %d messages", s.msgs)
	}
	return nil
}

// metadataOf keeps the response headers that are not pseudo-headers.
func metadataOf(fields []hpack.HeaderField) map[string][]string {
	md := make(map[string][]string, len(fields))
	for _, f := range fields {
		if !strings.HasPrefix(f.Name, ":") {
			md[f.Name] = append(md[f.Name], f.Value)
		}
	}
	return md
}

// decodeGRPCMessage undoes grpc-message's percent-encoding.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// rstCode maps an RST_STREAM error code to a gRPC code, as gRPC-go does.
func rstCode(c http2.ErrCode) codes.Code {
	switch c {
	case http2.ErrCodeRefusedStream:
		return codes.Unavailable
	case http2.ErrCodeCancel:
		return codes.Canceled
	case http2.ErrCodeEnhanceYourCalm:
		return codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		return codes.PermissionDenied
	}
	return codes.Internal
}

// httpCode maps a non-200 HTTP status to a gRPC code, as gRPC-go does.
func httpCode(s int) codes.Code {
	switch s {
	case 400:
		return codes.Internal
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.Unimplemented
	case 429, 502, 503, 504:
		return codes.Unavailable
	}
	return codes.Unknown
}

func appendFrameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

func appendSetting(b []byte, id http2.SettingID, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(b, uint16(id)), v)
}

func appendWindowUpdate(b []byte, id, inc uint32) []byte {
	return binary.BigEndian.AppendUint32(appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id), inc)
}
