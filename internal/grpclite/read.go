package grpclite

import (
	"io"
	"net"
	"sync"
	"syscall"
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

// source is where a connection's bytes come from: read fills a buffer from
// the pool when bytes are there to read, and returns n > 0 or an error.
type source interface {
	read(pool *bufPool) (*[]byte, int, error)
}

// readySource reads a TCP connection only once the poller says it is
// readable, so that no buffer is held while the connection waits.
type readySource struct {
	raw syscall.RawConn
	// What the callback leaves behind (reads are serialised by the
	// connection's reader goroutine).
	pool *bufPool
	buf  *[]byte
	n    int
	err  error
	fn   func(fd uintptr) bool
}

func newSource(c net.Conn) source {
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			rs := &readySource{raw: raw}
			rs.fn = rs.attempt
			return rs
		}
	}
	return blockingSource{c}
}

// attempt is the RawConn.Read callback: it reads into a pooled buffer and
// says whether it is done (false asks the poller to wait for readability).
func (rs *readySource) attempt(fd uintptr) bool {
	rs.buf = rs.pool.get()
	rs.n, rs.err = syscall.Read(int(fd), *rs.buf)
	if rs.err == syscall.EAGAIN || rs.err == syscall.EWOULDBLOCK {
		rs.pool.put(rs.buf)
		rs.buf = nil
		return false
	}
	if rs.err == syscall.EINTR {
		rs.pool.put(rs.buf)
		rs.buf = nil
		return false
	}
	return true
}

func (rs *readySource) read(pool *bufPool) (*[]byte, int, error) {
	rs.pool = pool
	err := rs.raw.Read(rs.fn)
	buf, n, rerr := rs.buf, rs.n, rs.err
	rs.buf, rs.pool = nil, nil
	if err == nil {
		err = rerr
	}
	if err == nil && n <= 0 {
		err = io.EOF
	}
	if err != nil {
		if buf != nil {
			pool.put(buf)
		}
		return nil, 0, err
	}
	return buf, n, nil
}

// blockingSource reads any other connection (TLS) the plain way, holding
// a buffer while it waits.
type blockingSource struct{ r io.Reader }

func (bs blockingSource) read(pool *bufPool) (*[]byte, int, error) {
	buf := pool.get()
	for {
		n, err := bs.r.Read(*buf)
		if n > 0 {
			return buf, n, nil
		}
		if err == nil {
			continue
		}
		pool.put(buf)
		return nil, 0, err
	}
}

// frameReader cuts frames out of a connection's bytes. A frame that lies
// whole in the read buffer is returned in place; one that spans reads is
// gathered in a second pooled buffer, given back at the next call.
type frameReader struct {
	src     source
	pool    *bufPool // of buffers larger than any frame allowed
	buf     *[]byte
	r, w    int
	scratch *[]byte
}

// buffered is how many bytes wait that were already read.
func (fr *frameReader) buffered() int { return fr.w - fr.r }

// next returns the next n bytes (n at most the pool's buffer size), valid
// until the following call.
func (fr *frameReader) next(n int) ([]byte, error) {
	if fr.scratch != nil {
		fr.pool.put(fr.scratch)
		fr.scratch = nil
	}
	if fr.buf != nil && fr.r == fr.w {
		fr.pool.put(fr.buf)
		fr.buf = nil
	}
	if n == 0 {
		return nil, nil
	}
	if fr.w-fr.r >= n {
		b := (*fr.buf)[fr.r : fr.r+n]
		fr.r += n
		return b, nil
	}
	fr.scratch = fr.pool.get()
	s := (*fr.scratch)[:0]
	for len(s) < n {
		if fr.r == fr.w {
			if fr.buf != nil {
				fr.pool.put(fr.buf)
				fr.buf = nil
			}
			buf, m, err := fr.src.read(fr.pool)
			if err != nil {
				if len(s) > 0 && err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			fr.buf, fr.r, fr.w = buf, 0, m
		}
		k := min(n-len(s), fr.w-fr.r)
		s = append(s, (*fr.buf)[fr.r:fr.r+k]...)
		fr.r += k
	}
	return s, nil
}

// release returns the buffers held (the connection is done).
func (fr *frameReader) release() {
	for _, b := range []**[]byte{&fr.buf, &fr.scratch} {
		if *b != nil {
			fr.pool.put(*b)
			*b = nil
		}
	}
	fr.r, fr.w = 0, 0
}
