package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Reader streams the records of a trace in order. Segments are read,
// checked and decompressed ahead of the caller, in parallel, a bounded
// number at a time: memory is a few segments whatever the trace size.
// A Reader is not safe for concurrent use.
type Reader struct {
	m     *Manifest // nil for OpenSegment
	st    store
	infos []*SegmentInfo // per segment; nil entries for OpenSegment

	dec     readerDecoders
	results chan chan segResult // one per segment, in order
	done    chan struct{}
	wg      sync.WaitGroup

	// reuse, set by ReuseBuffers, sends each finished segment's buffer to
	// free, where the decoders take it for a later segment. Decoders
	// allocate at most cap(free) buffers while reusing (counted in bufs)
	// and then wait for a free one, so memory stays a fixed number of
	// segments however fast they run ahead of the caller.
	reuse  atomic.Bool
	free   chan segBuf
	bufs   atomic.Int32
	curRaw []byte // the decompressed stream that cur points into

	cur   []Record
	pos   int
	seg   int // segments consumed
	last  time.Duration
	err   error // sticky; io.EOF at the end
	close sync.Once
}

// segBuf is what a segment is decoded into, taken back together for a
// later segment with ReuseBuffers: the decompressed stream and the records
// that point into it.
type segBuf struct {
	raw  []byte
	recs []Record
}

type segResult struct {
	path string // the segment's file, for errors
	recs []Record
	raw  []byte // the decompressed stream the records point into
	err  error
}

// Open opens the trace in dir: it reads and checks the manifest and that
// every segment file exists, then starts decoding ahead.
func Open(dir string) (*Reader, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	st := newDirStore(dir, m)
	for i := range m.Segments {
		path := st.paths[i]
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, missingSegment(path, i, len(m.Segments))
			}
			return nil, fmt.Errorf("format: open trace: %w", err)
		}
	}
	return newReader(m, st)
}

// OpenSegment reads a single segment file without a manifest (for
// salvaging a damaged or unfinished trace). Its Manifest is nil, and
// nothing checks the file against a SHA-256.
func OpenSegment(path string) (*Reader, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fileErr(path, 0, fmt.Errorf("%w: %v", ErrMissingSegment, err))
		}
		return nil, fmt.Errorf("format: open segment: %w", err)
	}
	return newReader(nil, &dirStore{paths: []string{path}})
}

// newReader starts reading the segments of st: those of m, or the one
// segment of an OpenSegment when m is nil.
func newReader(m *Manifest, st store) (*Reader, error) {
	ahead := max(2, runtime.GOMAXPROCS(0))
	dec, err := newReaderDecoders(ahead + 1)
	if err != nil {
		return nil, err
	}
	infos := []*SegmentInfo{nil}
	if m != nil {
		infos = make([]*SegmentInfo, len(m.Segments))
		for i := range m.Segments {
			infos[i] = &m.Segments[i]
		}
	}
	r := &Reader{
		m:       m,
		st:      st,
		infos:   infos,
		dec:     dec,
		results: make(chan chan segResult, ahead),
		done:    make(chan struct{}),
		// While the caller waits for segment n, the decoders of n to
		// n+ahead hold a buffer each: ahead+1, and one spare.
		free: make(chan segBuf, ahead+2),
	}
	r.wg.Add(1)
	go r.feed()
	return r, nil
}

func newDecoder(concurrency int, opts ...zstd.DOption) (*zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil, append([]zstd.DOption{
		zstd.WithDecoderConcurrency(concurrency),
		zstd.WithDecoderMaxMemory(MaxSegmentSize),
		zstd.WithDecoderLowmem(false)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("format: zstd decoder: %w", err)
	}
	return dec, nil
}

// readerDecoders are a Reader's two zstd decoders. A segment file whose
// SHA-256 matches the manifest's holds exactly the bytes its writer
// wrote, so the zstd content checksum and the records' CRC-32C, which
// only find damage the SHA-256 finds first, are not checked again:
// together they took a third of the reader's CPU (FORMAT.md §5). A
// segment without a manifest, or one that fails its SHA-256, is checked
// in full, which names the damaged record. Verify checks everything.
type readerDecoders struct {
	checked *zstd.Decoder // checks the content checksum
	matched *zstd.Decoder // for files that matched their SHA-256; nil: none
}

func newReaderDecoders(concurrency int) (readerDecoders, error) {
	checked, err := newDecoder(concurrency)
	if err != nil {
		return readerDecoders{}, err
	}
	matched, err := newDecoder(concurrency, zstd.IgnoreChecksum(true))
	if err != nil {
		checked.Close()
		return readerDecoders{}, err
	}
	return readerDecoders{checked, matched}, nil
}

func (d readerDecoders) Close() {
	d.checked.Close()
	if d.matched != nil {
		d.matched.Close()
	}
}

// feed loads segments in order (a packed stream can only be read in
// order) and starts decoding each in its own goroutine, at most
// cap(results) ahead of the one the caller is reading. After a segment
// that cannot be loaded it stops: the caller gets that error next.
func (r *Reader) feed() {
	defer r.wg.Done()
	defer close(r.results)
	for i, info := range r.infos {
		ch := make(chan segResult, 1)
		select {
		case r.results <- ch:
		case <-r.done:
			return
		}
		b, path, err := r.st.segment(i, info)
		if err != nil {
			ch <- segResult{path: path, err: err}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := r.takeBuffer()
			recs, raw, err := decodeSegmentFile(r.dec, path, b, info, buf)
			ch <- segResult{path, recs, raw, r.st.locate(i, err)}
		}()
	}
}

// ReuseBuffers lets the Reader decompress segments into the buffers of
// segments the caller has finished with, instead of allocating a new one
// (up to the segment size, 4 MiB by default) for each: reading a 2 GB
// trace then makes a few megabytes of garbage, not 2 GB. The price is
// that a record returned by Next, and its Data, are valid only until the
// next call to Next: copy what must outlive it. Call it before the first
// Next.
func (r *Reader) ReuseBuffers() { r.reuse.Store(true) }

// takeBuffer returns buffers to decode the next segment into: none
// (allocate) without reuse, else free ones, new ones while fewer than
// cap(free) exist, or the next ones the caller finishes with.
func (r *Reader) takeBuffer() segBuf {
	if !r.reuse.Load() {
		return segBuf{}
	}
	select {
	case b := <-r.free:
		return b
	default:
	}
	if r.bufs.Add(1) <= int32(cap(r.free)) {
		return segBuf{}
	}
	r.bufs.Add(-1)
	select {
	case b := <-r.free:
		return b
	case <-r.done:
		return segBuf{}
	}
}

// Manifest returns the trace's manifest (nil for OpenSegment).
func (r *Reader) Manifest() *Manifest { return r.m }

// Next returns the next record, or io.EOF after the last one. The record
// and its Data stay valid and unchanged after later calls: they point into
// the segment's decompressed stream, without copying. Keeping any record
// therefore keeps its whole segment (up to the segment size, 4 MiB by
// default) in memory; to hold a few records for long, copy them
// (bytes.Clone the Data). Damage gives a *CorruptionError; after any
// error Next keeps returning it.
func (r *Reader) Next() (*Record, error) {
	for r.pos >= len(r.cur) {
		if r.err != nil {
			return nil, r.err
		}
		if r.curRaw != nil && r.reuse.Load() {
			// The caller is done with this segment's records: its
			// buffers can take a later segment (before waiting for the
			// next one, whose decoder may be waiting for a buffer).
			select {
			case r.free <- segBuf{raw: r.curRaw, recs: r.cur[:0]}:
			default:
			}
			r.cur, r.curRaw = nil, nil
		}
		ch, ok := <-r.results
		if !ok {
			r.err = io.EOF
			if r.seg < len(r.infos) { // closed early
				r.err = errors.New("format: reader closed")
			}
			return nil, r.err
		}
		res := <-ch
		i := r.seg
		r.seg++
		if res.err != nil {
			r.err = res.err
			return nil, r.err
		}
		if len(res.recs) > 0 && res.recs[0].Offset < r.last {
			r.err = r.st.locate(i, streamErr(res.path, int64(segmentHeaderSize), 0, fmt.Errorf("%w: first offset %d ns is before the previous segment's last %d ns", ErrOrder, res.recs[0].Offset, r.last)))
			return nil, r.err
		}
		r.cur, r.curRaw, r.pos = res.recs, res.raw, 0
	}
	rec := &r.cur[r.pos]
	r.pos++
	r.last = rec.Offset
	return rec, nil
}

// Close stops decoding ahead and releases the decoder. Records already
// returned stay valid.
func (r *Reader) Close() error {
	r.close.Do(func() {
		close(r.done)
		// Unblock the feeder and drop results nobody will read.
		for range r.results {
		}
		r.wg.Wait()
		r.dec.Close()
		r.st.close()
		r.cur = nil
		if r.err == nil {
			r.err = errors.New("format: reader closed")
		}
	})
	return nil
}

// readSegment reads, checks and decodes one segment file. info, when not
// nil, is what the manifest says about it.
func readSegment(dec readerDecoders, path string, info *SegmentInfo) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fileErr(path, 0, fmt.Errorf("%w: %v", ErrMissingSegment, err))
		}
		return nil, fmt.Errorf("format: read segment: %w", err)
	}
	recs, _, err := decodeSegmentFile(dec, path, b, info, segBuf{})
	return recs, err
}

// decodeSegmentFile checks and decodes the bytes b of one segment file,
// decompressing into buf when it is big enough; it also returns the
// decompressed stream the records point into. No record is returned
// unless the file's SHA-256 matches info's.
func decodeSegmentFile(dec readerDecoders, path string, b []byte, info *SegmentInfo, buf segBuf) ([]Record, []byte, error) {
	shaOK := true
	dst := buf.raw[:0]
	zd := dec.checked
	if info != nil {
		if n := int64(len(b)); n < info.CompressedBytes {
			return nil, nil, fileErr(path, n, fmt.Errorf("%w: file is %d bytes, the manifest says %d", ErrTruncated, n, info.CompressedBytes))
		} else if n > info.CompressedBytes {
			return nil, nil, fileErr(path, info.CompressedBytes, fmt.Errorf("%w: file is %d bytes, the manifest says %d", ErrChecksum, n, info.CompressedBytes))
		}
		sum := sha256.Sum256(b)
		shaOK = hex.EncodeToString(sum[:]) == info.SHA256
		if shaOK && dec.matched != nil {
			zd = dec.matched
		}
		if int64(cap(dst)) < info.RawBytes {
			// An eighth more than this segment: the segments of a trace
			// differ in size by up to a record, and a buffer that fits
			// only this one would be replaced for most later ones.
			dst = make([]byte, 0, info.RawBytes+info.RawBytes/8)
		}
	}
	raw, err := zd.DecodeAll(b, dst)
	if err != nil {
		return nil, nil, zstdError(path, b, err)
	}
	recs, err := decodeSegmentInto(path, raw, buf.recs[:0], zd == dec.checked)
	if err != nil {
		return nil, nil, err
	}
	if !shaOK {
		// zstd and every record CRC passed: the damage is in bytes that
		// do not change the content (padding, checksum field).
		return nil, nil, fileErr(path, 0, fmt.Errorf("%w: file SHA-256 differs from the manifest's %s", ErrChecksum, info.SHA256))
	}
	if info != nil {
		if err := checkSegmentInfo(recs, int64(len(raw)), info); err != nil {
			return nil, nil, fileErr(path, 0, err)
		}
	}
	return recs, raw, nil
}

func checkSegmentInfo(recs []Record, raw int64, info *SegmentInfo) error {
	n := int64(len(recs))
	switch {
	case n != info.Records:
		return fmt.Errorf("%w: segment holds %d records, the manifest says %d", ErrManifest, n, info.Records)
	case raw != info.RawBytes:
		return fmt.Errorf("%w: segment decompresses to %d bytes, the manifest says %d", ErrManifest, raw, info.RawBytes)
	case recs[0].Offset != info.FirstOffset || recs[n-1].Offset != info.LastOffset:
		return fmt.Errorf("%w: segment spans %d..%d ns, the manifest says %d..%d", ErrManifest,
			recs[0].Offset, recs[n-1].Offset, info.FirstOffset, info.LastOffset)
	}
	return nil
}

// zstdError turns a zstd failure into a CorruptionError that says where.
// DecodeAll does not say where it failed, so on this (rare) path:
//   - when only the zstd content checksum failed, the content is decoded
//     again without it and the record CRC32Cs name the damaged record;
//   - otherwise the file is decoded again as a stream, one block at a
//     time, counting the compressed bytes consumed: the damage is in the
//     zstd block that ends at the reported file offset.
func zstdError(path string, b []byte, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fileErr(path, int64(len(b)), fmt.Errorf("%w: file ends inside a zstd frame: %v", ErrTruncated, err))
	}
	if errors.Is(err, zstd.ErrCRCMismatch) {
		if dec, derr := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxSegmentSize), zstd.IgnoreChecksum(true)); derr == nil {
			raw, rerr := dec.DecodeAll(b, nil)
			dec.Close()
			if rerr == nil {
				if _, serr := decodeSegment(path, raw); serr != nil {
					var ce *CorruptionError
					if errors.As(serr, &ce) && !errors.Is(ce.Err, ErrChecksum) {
						ce.Err = fmt.Errorf("%w: zstd content checksum failed; first bad record: %w", ErrChecksum, ce.Err)
					}
					return serr
				}
			}
		}
	}
	cr := &countingReader{r: bytes.NewReader(b)}
	off := int64(len(b))
	if dec, derr := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxSegmentSize)); derr == nil {
		_, serr := io.Copy(io.Discard, dec)
		dec.Close()
		if serr != nil {
			off = cr.n
			if errors.Is(serr, io.ErrUnexpectedEOF) {
				return fileErr(path, off, fmt.Errorf("%w: file ends inside a zstd frame: %v", ErrTruncated, serr))
			}
		}
	}
	return fileErr(path, off, fmt.Errorf("%w: zstd stream damaged at or before this offset: %v", ErrChecksum, err))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
