package format

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// PackExt is the usual extension of a packed trace (trace.crp).
const PackExt = ".crp"

// packBlock is the tar block size: headers and member data start on
// multiples of it.
const packBlock = 512

// packEpoch is the modification time of every member, so that packing the
// same trace twice gives the same bytes.
var packEpoch = time.Unix(0, 0)

// writePack writes the packed form of an opened trace to w: a POSIX ustar
// archive of manifest.json (its exact bytes) and then every segment in
// order, as they are. Each segment's size and SHA-256 are checked against
// the manifest before it is written, so a pack never carries a segment its
// manifest does not vouch for.
func writePack(w io.Writer, o *opened) error {
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(packHeader(name, int64(len(b)))); err != nil {
			return fmt.Errorf("format: pack %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("format: pack %s: %w", name, err)
		}
		return nil
	}
	if err := add(ManifestName, o.mb); err != nil {
		return err
	}
	for i := range o.m.Segments {
		info := &o.m.Segments[i]
		b, path, err := o.st.segment(i, info)
		if err != nil {
			return err
		}
		if n := int64(len(b)); n != info.CompressedBytes {
			return o.st.locate(i, fileErr(path, min(n, info.CompressedBytes), fmt.Errorf("%w: file is %d bytes, the manifest says %d", ErrChecksum, n, info.CompressedBytes)))
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != info.SHA256 {
			return o.st.locate(i, fileErr(path, 0, fmt.Errorf("%w: file SHA-256 differs from the manifest's %s", ErrChecksum, info.SHA256)))
		}
		if err := add(info.Name, b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("format: pack: %w", err)
	}
	return nil
}

// packHeader is the tar header of every member of a pack: a regular file,
// mode 0644, owned by 0:0, modified at the epoch, ustar format.
func packHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: packEpoch, Format: tar.FormatUSTAR}
}

// canonicalHeader returns the bytes writePack puts before a member's data:
// the previous member's padding (zeros) up to a whole block, then its
// header block.
func canonicalHeader(pad int64, name string, size int64) []byte {
	var buf bytes.Buffer
	buf.Write(make([]byte, pad))
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(packHeader(name, size)); err != nil {
		return nil // a name or size no pack holds: no input matches
	}
	return buf.Bytes()
}

// packStore reads a packed trace in one pass, from a file or a network
// stream: the manifest member first, then each segment member in order.
type packStore struct {
	name string // the packed file or URL, for errors
	body io.ReadCloser
	cr   *packReader
	tr   *tar.Reader
	err  error // sticky: a stream cannot skip what it failed to read

	mu     sync.Mutex // starts is appended by the loader, read by decoders (locate)
	starts []int64    // pack offset of each member's data: manifest, then segments
}

func newPackStore(name string, body io.ReadCloser) *packStore {
	cr := &packReader{r: body}
	return &packStore{name: name, body: body, cr: cr, tr: tar.NewReader(cr)}
}

// manifest reads the first member, which must be manifest.json.
func (p *packStore) manifest() (*Manifest, []byte, error) {
	b, err := p.member(ManifestName, -1, MaxManifestSize)
	if err != nil {
		return nil, nil, err
	}
	m, err := parseManifest(ManifestName, b)
	if err != nil {
		return nil, nil, p.locate(-1, err)
	}
	return m, b, nil
}

func (p *packStore) segment(i int, info *SegmentInfo) ([]byte, string, error) {
	name := SegmentName(i + 1)
	if p.err != nil {
		// An earlier member failed: the stream stopped there, and that
		// error is the one to report, not the order of this request.
		return nil, name, errUnreadable
	}
	if p.members() != i+1 {
		return nil, name, fmt.Errorf("format: pack %s: segment %d asked out of order", p.name, i+1)
	}
	b, err := p.member(name, info.CompressedBytes, info.CompressedBytes)
	return b, name, err
}

// member reads the next member, which must be a regular file called want,
// size bytes long when size >= 0, and at most limit bytes. Memory grows
// with the bytes that arrive, not with what a header claims.
func (p *packStore) member(want string, size, limit int64) ([]byte, error) {
	if p.err != nil {
		return nil, errUnreadable
	}
	b, err := p.readMember(want, size, limit)
	if err != nil {
		p.err = err
		return nil, err
	}
	return b, nil
}

func (p *packStore) readMember(want string, size, limit int64) ([]byte, error) {
	at, end := p.next(), p.cr.n
	p.cr.take()
	hdr, err := p.tr.Next()
	if err != nil {
		return nil, p.headerErr(at, "member "+want, err)
	}
	switch {
	case hdr.Name != want:
		return nil, fileErr(p.name, at, fmt.Errorf("%w: member %d is %q, want %s (a pack holds manifest.json, then the segments in order)", ErrPack, p.members()+1, hdr.Name, want))
	case hdr.Typeflag != tar.TypeReg:
		return nil, fileErr(p.name, at, fmt.Errorf("%w: member %s is not a regular file (tar type %q)", ErrPack, want, hdr.Typeflag))
	case size >= 0 && hdr.Size < size:
		return nil, fileErr(p.name, at, fmt.Errorf("%w: member %s is %d bytes, the manifest says %d", ErrTruncated, want, hdr.Size, size))
	case size >= 0 && hdr.Size > size:
		return nil, fileErr(p.name, at, fmt.Errorf("%w: member %s is %d bytes, the manifest says %d", ErrChecksum, want, hdr.Size, size))
	case hdr.Size > limit:
		return nil, fileErr(p.name, at, fmt.Errorf("%w: member %s is %d bytes, more than the %d a reader accepts", ErrPack, want, hdr.Size, limit))
	}
	// A pack is canonical: every byte outside the members' data is what
	// writePack puts there, so that no byte of the file can change
	// unnoticed (tar itself ignores padding and some header bytes).
	if got, wantb := p.cr.taken(), canonicalHeader(at-end, hdr.Name, hdr.Size); !bytes.Equal(got, wantb) {
		i := 0
		for i < len(got) && i < len(wantb) && got[i] == wantb[i] {
			i++
		}
		return nil, fileErr(p.name, end+int64(i), fmt.Errorf("%w: the padding or header before member %s differs from what cereplay pack writes", ErrPack, want))
	}
	start := p.cr.n
	p.mu.Lock()
	p.starts = append(p.starts, start)
	p.mu.Unlock()
	b, err := io.ReadAll(io.LimitReader(p.tr, hdr.Size))
	if int64(len(b)) < hdr.Size {
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fileErr(p.name, start+int64(len(b)), fmt.Errorf("%w: the pack ends inside member %s, after %d of its %d bytes%s", ErrTruncated, want, len(b), hdr.Size, because(err)))
		}
		return nil, fmt.Errorf("format: read %s: %w", p.name, err)
	}
	return b, nil
}

// next is where the next member's header starts: member data is padded to
// a whole block.
func (p *packStore) next() int64 {
	return (p.cr.n + packBlock - 1) / packBlock * packBlock
}

// headerErr explains a failure to read the header of the member want.
// what is the member expected there, or the end of the archive.
func (p *packStore) headerErr(at int64, what string, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return fileErr(p.name, at, fmt.Errorf("%w: the pack ends where %s should begin", ErrTruncated, what))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fileErr(p.name, at, fmt.Errorf("%w: the pack ends inside the header of %s%s", ErrTruncated, what, because(err)))
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return fileErr(p.name, at, fmt.Errorf("%w: header of %s: %v", ErrPack, what, err))
	}
	// A failing read of the file or the network.
	return fmt.Errorf("format: read %s at offset %d: %w", p.name, at, err)
}

// members is how many members have been read.
func (p *packStore) members() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.starts)
}

// because says why a read ended early when err says more than that it did
// (a download that broke and could not be resumed).
func because(err error) string {
	if err == nil || err == io.ErrUnexpectedEOF {
		return ""
	}
	return " (" + err.Error() + ")"
}

func (p *packStore) locate(i int, err error) error {
	var ce *CorruptionError
	if err == nil || !errors.As(err, &ce) || ce.File == p.name {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i+1 >= len(p.starts) {
		return err
	}
	ce.File = p.name
	ce.Member = ManifestName
	if i >= 0 {
		ce.Member = SegmentName(i + 1)
	}
	ce.PackOffset = p.starts[i+1] + ce.Offset
	return err
}

// rest reports members after the last segment: a pack holds nothing else,
// and ends with the two zero blocks of a tar's end, then nothing.
func (p *packStore) rest(*Manifest) []error {
	if p.err != nil {
		return nil
	}
	var errs []error
	for {
		at, end := p.next(), p.cr.n
		p.cr.take()
		hdr, err := p.tr.Next()
		if errors.Is(err, io.EOF) {
			got, want := p.cr.taken(), make([]byte, at-end+2*packBlock)
			if i := bytes.IndexFunc(got, func(r rune) bool { return r != 0 }); i >= 0 {
				return append(errs, fileErr(p.name, end+int64(i), fmt.Errorf("%w: a byte of the padding or of the end of the archive is not zero", ErrPack)))
			}
			if len(got) < len(want) {
				return append(errs, fileErr(p.name, end+int64(len(got)), fmt.Errorf("%w: the archive ends without its two zero blocks", ErrTruncated)))
			}
			if extra, _ := io.Copy(io.Discard, p.cr); extra > 0 {
				errs = append(errs, fileErr(p.name, p.cr.n-extra, fmt.Errorf("%w: %d bytes after the end of the archive", ErrPack, extra)))
			}
			return errs
		}
		if err != nil {
			return append(errs, p.headerErr(at, "the end of the archive", err))
		}
		errs = append(errs, fileErr(p.name, at, fmt.Errorf("%w: member %q after the last segment (a pack holds manifest.json and the segments only)", ErrPack, hdr.Name)))
	}
}

func (p *packStore) close() error { return p.body.Close() }

// packReader counts the bytes read from a pack and, between take and
// taken, keeps them: the bytes tar reads for a member's header.
type packReader struct {
	r    io.Reader
	n    int64
	keep bool
	kept []byte
}

func (c *packReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.keep {
		c.kept = append(c.kept, b[:n]...)
	}
	return n, err
}

// take starts keeping the bytes read.
func (c *packReader) take() { c.keep, c.kept = true, c.kept[:0] }

// taken stops keeping and returns the bytes read since take.
func (c *packReader) taken() []byte {
	c.keep = false
	return c.kept
}
