package grpclite

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/net/http2"
)

// bufPool lends read buffers of one size. Thousands of agent connections
// sit idle between messages; a buffer held by each would cost the run tens
// of megabytes, so a connection holds one only while bytes wait in it.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any { b := make([]byte, size); return &b }
	return bp
}

func (bp *bufPool) get() *[]byte  { return bp.p.Get().(*[]byte) }
func (bp *bufPool) put(b *[]byte) { bp.p.Put(b) }

// readLoop reads the connection until it fails, handing what it reads to
// consume, then fails the connection with the reason.
func (cn *conn) readLoop() {
	var err error
	if tc, ok := cn.nc.(*net.TCPConn); ok {
		err = cn.readTCP(tc)
	} else {
		err = cn.readPlain()
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	cn.fail(err)
	cn.releasePending()
}

// readTCP reads a TCP connection inside one long syscall.RawConn.Read: a
// buffer is borrowed only once the poller says bytes are there, and a
// read that returns less than the buffer (the socket is drained) goes
// straight back to the poller. A read per call to net.Conn.Read would be
// followed by one more that meets EAGAIN before every wait: Go resets the
// descriptor's readiness when a read starts, so it must try first. The
// poller is edge-triggered and keeps the readiness that comes between a
// short read and the wait, so nothing is missed.
func (cn *conn) readTCP(tc *net.TCPConn) error {
	raw, err := tc.SyscallConn()
	if err != nil {
		return cn.readPlain()
	}
	var rerr error
	werr := raw.Read(func(fd uintptr) bool {
		for {
			buf := cn.cl.pool.get()
			n, err := syscall.Read(int(fd), *buf)
			switch {
			case err == syscall.EINTR:
				cn.cl.pool.put(buf)
				continue
			case err == syscall.EAGAIN:
				cn.cl.pool.put(buf)
				cn.flushControl() // before the wait
				return false
			case err != nil:
				cn.cl.pool.put(buf)
				rerr = err
				return true
			case n == 0:
				cn.cl.pool.put(buf)
				rerr = io.EOF
				return true
			}
			drained := n < len(*buf) // known before the buffer goes back
			rerr = cn.consume((*buf)[:n])
			cn.cl.pool.put(buf)
			if rerr != nil {
				return true
			}
			if drained {
				cn.flushControl() // before the wait
				return false
			}
		}
	})
	if rerr != nil {
		return rerr
	}
	return werr
}

// readPlain reads any other connection (TLS, pipes), holding a buffer
// while it waits.
func (cn *conn) readPlain() error {
	buf := cn.cl.pool.get()
	defer cn.cl.pool.put(buf)
	for {
		n, err := cn.nc.Read(*buf)
		if n > 0 {
			if cerr := cn.consume((*buf)[:n]); cerr != nil {
				return cerr
			}
			cn.flushControl()
		}
		if err != nil {
			return err
		}
	}
}

// flushControl writes the frames the reader queued (acks, window
// updates), if any.
func (cn *conn) flushControl() {
	if !cn.ctlQueued {
		return
	}
	cn.ctlQueued = false
	cn.wmu.Lock()
	cn.flushLocked()
	cn.wmu.Unlock()
}

// consume handles the frames in b, the next bytes from the server, in
// place; a frame cut at the end of b is kept in pending until the rest
// comes. b is not kept.
func (cn *conn) consume(b []byte) error {
	if cn.pending != nil {
		// Complete the frame begun in an earlier read: its header first,
		// then its payload.
		p := *cn.pending
		need := frameHeaderLen
		if len(p) >= frameHeaderLen {
			need += frameLength(p)
		}
		for {
			k := min(need-len(p), len(b))
			p, b = append(p, b[:k]...), b[k:]
			if len(p) < need {
				*cn.pending = p
				return nil // b is used up
			}
			if need == frameHeaderLen && frameLength(p) > 0 {
				if err := checkFrameLength(p); err != nil {
					return err
				}
				need += frameLength(p)
				continue
			}
			break
		}
		err := cn.frame(p)
		cn.releasePending()
		if err != nil {
			return err
		}
	}
	for len(b) >= frameHeaderLen {
		if err := checkFrameLength(b); err != nil {
			return err
		}
		n := frameHeaderLen + frameLength(b)
		if len(b) < n {
			break
		}
		if err := cn.frame(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	if len(b) > 0 {
		cn.pending = cn.cl.pool.get()
		*cn.pending = append((*cn.pending)[:0], b...)
	}
	return nil
}

// releasePending gives back the buffer of a partial frame, if any.
func (cn *conn) releasePending() {
	if cn.pending != nil {
		*cn.pending = (*cn.pending)[:cap(*cn.pending)]
		cn.cl.pool.put(cn.pending)
		cn.pending = nil
	}
}

// frameLength is the payload length in a frame header.
func frameLength(h []byte) int { return int(h[0])<<16 | int(h[1])<<8 | int(h[2]) }

// checkFrameLength refuses a frame larger than this client allows (it
// advertises the default maximum).
func checkFrameLength(h []byte) error {
	if n := frameLength(h); n > maxFrameSize {
		return connError{http2.ErrCodeFrameSize, fmt.Sprintf("%v frame of %d bytes", http2.FrameType(h[3]), n)}
	}
	return nil
}

// frame handles one whole frame, header and payload.
func (cn *conn) frame(f []byte) error {
	typ, flags := http2.FrameType(f[3]), http2.Flags(f[4])
	id := binary.BigEndian.Uint32(f[5:]) & maxStreamID
	if cn.hstream != 0 && typ != http2.FrameContinuation {
		return protocolError("%v frame inside a header block", typ)
	}
	if !cn.gotSettings && typ != http2.FrameSettings {
		return protocolError("%v frame before the server's SETTINGS", typ)
	}
	return cn.onFrame(typ, flags, id, f[frameHeaderLen:])
}
