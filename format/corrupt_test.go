package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// pristine is a small trace of many segments, written once and copied
// for each damage.
var pristine struct {
	once sync.Once
	dir  string
	err  error
}

func pristineTrace(t *testing.T) string {
	t.Helper()
	c := loadCorpus(t)
	pristine.once.Do(func() {
		dir, err := os.MkdirTemp("", "format-pristine-")
		if err != nil {
			pristine.err = err
			return
		}
		pristine.dir = filepath.Join(dir, "trace")
		writeTrace(t, c, pristine.dir, 400, WriterOptions{SegmentSize: 256 << 10, Provenance: Provenance{Tool: "test"}})
	})
	if pristine.err != nil {
		t.Fatal(pristine.err)
	}
	return pristine.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pristine.dir != "" {
		os.RemoveAll(filepath.Dir(pristine.dir))
	}
	os.Exit(code)
}

func copyTrace(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "trace")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func segPath(dir string, n int) string { return filepath.Join(dir, SegmentName(n)) }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteManifest changes the manifest and writes it back with a correct
// digest, as a careless tool would.
func rewriteManifest(t *testing.T, dir string, change func(m *Manifest)) {
	t.Helper()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	change(m)
	b, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, ManifestName), b)
}

// rewriteSegment changes segment n's decompressed stream, recompresses it
// and updates the manifest's sizes and SHA-256, so only the change itself
// is wrong.
func rewriteSegment(t *testing.T, dir string, n int, change func(raw []byte) []byte) {
	t.Helper()
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	raw, err := dec.DecodeAll(mustRead(t, segPath(dir, n)), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw = change(raw)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	comp := enc.EncodeAll(raw, nil)
	mustWrite(t, segPath(dir, n), comp)
	info := SegmentInfo{CompressedBytes: int64(len(comp)), RawBytes: int64(len(raw))}
	sum := sha256sum(comp)
	rewriteManifest(t, dir, func(m *Manifest) {
		s := &m.Segments[n-1]
		m.CompressedBytes += info.CompressedBytes - s.CompressedBytes
		m.RawBytes += info.RawBytes - s.RawBytes
		s.CompressedBytes, s.RawBytes, s.SHA256 = info.CompressedBytes, info.RawBytes, sum
	})
}

// frames returns the start offset of every record frame in raw.
func frames(t *testing.T, raw []byte) []int {
	t.Helper()
	var at []int
	for off := segmentHeaderSize; off < len(raw); {
		n, w := binary.Uvarint(raw[off:])
		if w <= 0 {
			t.Fatal("bad frame in pristine segment")
		}
		at = append(at, off)
		off += w + int(n) + 4
	}
	return at
}

// reframe replaces record i's body in raw with change(body), with a
// correct length and CRC32C.
func reframe(t *testing.T, raw []byte, i int, change func(body []byte) []byte) []byte {
	t.Helper()
	at := frames(t, raw)[i]
	n, w := binary.Uvarint(raw[at:])
	body := change(bytes.Clone(raw[at+w : at+w+int(n)]))
	out := append(bytes.Clone(raw[:at]), binary.AppendUvarint(nil, uint64(len(body)))...)
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	return append(out, raw[at+w+int(n)+4:]...)
}

func setRecord(t *testing.T, raw []byte, i int, change func(r *Record)) []byte {
	return reframe(t, raw, i, func(body []byte) []byte {
		var r Record
		if err := DecodeRecord(body, &r); err != nil {
			t.Fatal(err)
		}
		change(&r)
		fr := AppendRecord(nil, &r)
		_, w := binary.Uvarint(fr)
		return fr[w : len(fr)-4]
	})
}

// readAll opens a trace and reads every record, returning the first error.
func readAll(dir string) (int, error) {
	r, err := Open(dir)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for n := 0; ; n++ {
		if _, err := r.Next(); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
	}
}

type damage struct {
	name    string
	damage  func(t *testing.T, dir string) (offset int64) // returns the offset the error must name, or -1 for "any"
	readErr error                                         // from Open or Next; nil: reading succeeds
	verify  error                                         // from Verify
	file    string                                        // base name the error must name
	stream  bool                                          // the offset is in the decompressed stream
	either  bool                                          // the offset may be in the file or the stream
	record  int64                                         // record index the error must name, -1 for none/any
}

var damages = []damage{
	{
		name: "flipped byte mid-segment",
		damage: func(t *testing.T, dir string) int64 {
			b := mustRead(t, segPath(dir, 2))
			b[len(b)/2] ^= 0x55
			mustWrite(t, segPath(dir, 2), b)
			return -1
		},
		readErr: ErrChecksum, verify: ErrChecksum, file: "00000002.seg.zst", record: -1, either: true,
	},
	{
		name: "flipped zstd content checksum",
		damage: func(t *testing.T, dir string) int64 {
			b := mustRead(t, segPath(dir, 3))
			b[len(b)-1] ^= 0xff
			mustWrite(t, segPath(dir, 3), b)
			return int64(len(b))
		},
		readErr: ErrChecksum, verify: ErrChecksum, file: "00000003.seg.zst", record: -1,
	},
	{
		name: "truncated segment",
		damage: func(t *testing.T, dir string) int64 {
			b := mustRead(t, segPath(dir, 2))
			mustWrite(t, segPath(dir, 2), b[:len(b)/2])
			return int64(len(b) / 2)
		},
		readErr: ErrTruncated, verify: ErrTruncated, file: "00000002.seg.zst", record: -1,
	},
	{
		name: "empty segment",
		damage: func(t *testing.T, dir string) int64 {
			mustWrite(t, segPath(dir, 1), nil)
			return 0
		},
		readErr: ErrTruncated, verify: ErrTruncated, file: "00000001.seg.zst", record: -1,
	},
	{
		name: "bytes appended to segment",
		damage: func(t *testing.T, dir string) int64 {
			b := mustRead(t, segPath(dir, 2))
			mustWrite(t, segPath(dir, 2), append(b, "extra"...))
			return int64(len(b))
		},
		readErr: ErrChecksum, verify: ErrChecksum, file: "00000002.seg.zst", record: -1,
	},
	{
		name: "missing segment",
		damage: func(t *testing.T, dir string) int64 {
			if err := os.Remove(segPath(dir, 3)); err != nil {
				t.Fatal(err)
			}
			return 0
		},
		readErr: ErrMissingSegment, verify: ErrMissingSegment, file: "00000003.seg.zst", record: -1,
	},
	{
		name: "missing manifest",
		damage: func(t *testing.T, dir string) int64 {
			if err := os.Remove(filepath.Join(dir, ManifestName)); err != nil {
				t.Fatal(err)
			}
			return 0
		},
		readErr: ErrManifest, verify: ErrManifest, file: ManifestName, record: -1,
	},
	{
		name: "garbled manifest JSON",
		damage: func(t *testing.T, dir string) int64 {
			path := filepath.Join(dir, ManifestName)
			b := mustRead(t, path)
			i := bytes.Index(b, []byte(`"records"`))
			b[i] = '{'
			mustWrite(t, path, b)
			return int64(i + 1)
		},
		readErr: ErrManifest, verify: ErrManifest, file: ManifestName, record: -1,
	},
	{
		name: "edited manifest value",
		damage: func(t *testing.T, dir string) int64 {
			path := filepath.Join(dir, ManifestName)
			b := mustRead(t, path)
			mustWrite(t, path, bytes.Replace(b, []byte(`"records": 400`), []byte(`"records": 401`), 1))
			return int64(len(digestPrefix))
		},
		readErr: ErrChecksum, verify: ErrChecksum, file: ManifestName, record: -1,
	},
	{
		name: "unknown manifest version",
		damage: func(t *testing.T, dir string) int64 {
			path := filepath.Join(dir, ManifestName)
			b := mustRead(t, path)
			mustWrite(t, path, bytes.Replace(b, []byte(`"format_version": 1`), []byte(`"format_version": 2`), 1))
			return 0
		},
		readErr: ErrVersion, verify: ErrVersion, file: ManifestName, record: -1,
	},
	{
		name: "unknown segment version",
		damage: func(t *testing.T, dir string) int64 {
			rewriteSegment(t, dir, 2, func(raw []byte) []byte { raw[len(segmentMagic)] = 2; return raw })
			return int64(len(segmentMagic))
		},
		readErr: ErrVersion, verify: ErrVersion, file: "00000002.seg.zst", stream: true, record: -1,
	},
	{
		name: "bad segment magic",
		damage: func(t *testing.T, dir string) int64 {
			rewriteSegment(t, dir, 1, func(raw []byte) []byte { raw[0] = 'X'; return raw })
			return 0
		},
		readErr: ErrFraming, verify: ErrFraming, file: "00000001.seg.zst", stream: true, record: -1,
	},
	{
		name: "record CRC mismatch",
		damage: func(t *testing.T, dir string) int64 {
			var off int64
			rewriteSegment(t, dir, 2, func(raw []byte) []byte {
				at := frames(t, raw)
				off = int64(at[5])
				raw[at[5]+200] ^= 1
				return raw
			})
			return off
		},
		// The manifest was rewritten to match the damaged file, as only a
		// faulty writer would: a Reader trusts a file that matches its
		// SHA-256 and reads it; Verify checks every CRC.
		verify: ErrChecksum, file: "00000002.seg.zst", stream: true, record: 5,
	},
	{
		name: "record cut short",
		damage: func(t *testing.T, dir string) int64 {
			var off int64
			rewriteSegment(t, dir, 4, func(raw []byte) []byte {
				at := frames(t, raw)
				off = int64(at[len(at)-1])
				return raw[:len(raw)-3]
			})
			return off
		},
		readErr: ErrTruncated, verify: ErrTruncated, file: "00000004.seg.zst", stream: true, record: -2, // last record
	},
	{
		name: "leftover bytes in record",
		damage: func(t *testing.T, dir string) int64 {
			var off int64
			rewriteSegment(t, dir, 2, func(raw []byte) []byte {
				off = int64(frames(t, raw)[3])
				return reframe(t, raw, 3, func(body []byte) []byte { return append(body, 0) })
			})
			return off
		},
		readErr: ErrFraming, verify: ErrFraming, file: "00000002.seg.zst", stream: true, record: 3,
	},
	{
		name: "offsets out of order in a segment",
		damage: func(t *testing.T, dir string) int64 {
			var off int64
			rewriteSegment(t, dir, 2, func(raw []byte) []byte {
				off = int64(frames(t, raw)[4])
				return setRecord(t, raw, 4, func(r *Record) { r.Offset -= 100e6 })
			})
			return off
		},
		readErr: ErrOrder, verify: ErrOrder, file: "00000002.seg.zst", stream: true, record: 4,
	},
	{
		name: "segments out of order in the manifest",
		damage: func(t *testing.T, dir string) int64 {
			rewriteManifest(t, dir, func(m *Manifest) { m.Segments[2].FirstOffset = m.Segments[1].LastOffset - 1 })
			return 0
		},
		readErr: ErrOrder, verify: ErrOrder, file: ManifestName, record: -1,
	},
	{
		name: "segment record count differs from manifest",
		damage: func(t *testing.T, dir string) int64 {
			rewriteManifest(t, dir, func(m *Manifest) { m.Segments[1].Records++; m.Records++ })
			return 0
		},
		readErr: ErrManifest, verify: ErrManifest, file: "00000002.seg.zst", record: -1,
	},
	{
		name: "counts by flow differ from records",
		damage: func(t *testing.T, dir string) int64 {
			rewriteManifest(t, dir, func(m *Manifest) { m.CountsByFlow["agent>server"]++ })
			return 0
		},
		verify: ErrManifest, file: ManifestName, record: -1,
	},
	{
		name: "manifest over the size limit",
		damage: func(t *testing.T, dir string) int64 {
			// Sparse: 275 MB that take no disk, and no memory unless read.
			if err := os.Truncate(filepath.Join(dir, ManifestName), 275<<20); err != nil {
				t.Fatal(err)
			}
			return MaxManifestSize
		},
		readErr: ErrManifest, verify: ErrManifest, file: ManifestName, record: -1,
	},
	{
		name: "extra segment file",
		damage: func(t *testing.T, dir string) int64 {
			mustWrite(t, filepath.Join(dir, SegmentName(99)), mustRead(t, segPath(dir, 1)))
			return 0
		},
		verify: ErrManifest, file: "00000099.seg.zst", record: -1,
	},
}

// TestDamage runs every damage against Open+Next and against Verify: each
// gives its own kind of error, naming the file and the offset.
func TestDamage(t *testing.T) {
	src := pristineTrace(t)
	if n, err := readAll(src); err != nil || n != 400 {
		t.Fatalf("pristine trace: %d records, %v", n, err)
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			dir := copyTrace(t, src)
			off := d.damage(t, dir)
			_, rerr := readAll(dir)
			verr := Verify(dir)
			t.Logf("read: %v\nverify: %v", rerr, verr)
			check := func(what string, err, want error) {
				t.Helper()
				if want == nil {
					if err != nil {
						t.Errorf("%s: unexpected error %v", what, err)
					}
					return
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s: error %v, want %v", what, err, want)
				}
				var ce *CorruptionError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: %v is not a *CorruptionError", what, err)
				}
				if filepath.Base(ce.File) != d.file {
					t.Errorf("%s: error names file %s, want %s", what, ce.File, d.file)
				}
				if ce.InStream != d.stream && !d.either {
					t.Errorf("%s: InStream %v, want %v (%v)", what, ce.InStream, d.stream, err)
				}
				if off >= 0 && ce.Offset != off {
					t.Errorf("%s: offset %d, want %d (%v)", what, ce.Offset, off, err)
				}
				if d.record >= 0 && ce.Record != d.record || d.record == -2 && ce.Record < 0 {
					t.Errorf("%s: record %d, want %d (%v)", what, ce.Record, d.record, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, d.file) || !strings.Contains(msg, "offset") {
					t.Errorf("%s: message %q does not name the file and offset", what, msg)
				}
			}
			check("read", rerr, d.readErr)
			check("Verify", verr, d.verify)
		})
	}
}

// TestVerifyAllReportsEverySegment: two damaged segments, two errors.
func TestVerifyAllReportsEverySegment(t *testing.T) {
	dir := copyTrace(t, pristineTrace(t))
	for _, n := range []int{2, 5} {
		b := mustRead(t, segPath(dir, n))
		mustWrite(t, segPath(dir, n), b[:len(b)-10])
	}
	errs := VerifyAll(dir)
	if len(errs) != 2 {
		t.Fatalf("VerifyAll: %d errors %v, want 2", len(errs), errs)
	}
	for i, n := range []int{2, 5} {
		var ce *CorruptionError
		if !errors.As(errs[i], &ce) || filepath.Base(ce.File) != SegmentName(n) || !errors.Is(errs[i], ErrTruncated) {
			t.Errorf("error %d: %v, want truncation of %s", i, errs[i], SegmentName(n))
		}
	}
}

func TestOpenSegment(t *testing.T) {
	src := pristineTrace(t)
	m, err := ReadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenSegment(segPath(src, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Manifest() != nil {
		t.Error("OpenSegment has a manifest")
	}
	var n int64
	var first *Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = rec
		}
		n++
	}
	if n != m.Segments[1].Records || first.Offset != m.Segments[1].FirstOffset {
		t.Errorf("segment 2: %d records from %d, manifest says %d from %d", n, first.Offset, m.Segments[1].Records, m.Segments[1].FirstOffset)
	}
	if _, err := OpenSegment(segPath(src, 999)); !errors.Is(err, ErrMissingSegment) {
		t.Errorf("OpenSegment of a missing file: %v", err)
	}
}

// TestFlipSweep flips one byte at a time at positions spread over a
// segment file: every flip is caught, as a CorruptionError naming the
// segment, never a panic or a silent success.
func TestFlipSweep(t *testing.T) {
	src := pristineTrace(t)
	dir := copyTrace(t, src)
	path := segPath(dir, 3)
	orig := mustRead(t, path)
	step := max(1, len(orig)/150)
	for pos := 0; pos < len(orig); pos += step {
		b := bytes.Clone(orig)
		b[pos] ^= 0x20
		mustWrite(t, path, b)
		_, err := readAll(dir)
		var ce *CorruptionError
		if !errors.As(err, &ce) || filepath.Base(ce.File) != SegmentName(3) {
			t.Fatalf("flip at %d: %v, want a CorruptionError in %s", pos, err, SegmentName(3))
		}
		if !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrFraming) && !errors.Is(err, ErrVersion) {
			t.Fatalf("flip at %d: unexpected kind of error %v", pos, err)
		}
	}
	mustWrite(t, path, orig)
	if err := Verify(dir); err != nil {
		t.Fatalf("restored trace: %v", err)
	}
}

// TestManifestSizeCheckedFirst: a manifest over MaxManifestSize is refused
// before it is read (it once took 1.4 GB of memory to refuse 275 MB), with
// its size in the message.
func TestManifestSizeCheckedFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	w, err := Create(dir, WriterOptions{Provenance: Provenance{Tool: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&Record{Type: TypeEvent, Flow: FlowAgentSubscribe, Actor: "c1", Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	const size = 275 << 20
	if err := os.Truncate(filepath.Join(dir, ManifestName), size); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadManifest(dir)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), ManifestName) || !strings.Contains(err.Error(), "288358400 bytes") {
		t.Fatalf("ReadManifest of a %d-byte manifest: %v; want ErrManifest naming the file and its size", size, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing the manifest allocated %d bytes", alloc)
	}
}

// TestWriterRefusesOversizedManifest: the Writer fails rather than write a
// manifest that readers would refuse.
func TestWriterRefusesOversizedManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million records")
	}
	dir := filepath.Join(t.TempDir(), "trace")
	w, err := Create(dir, WriterOptions{Provenance: Provenance{Tool: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	// 63-character names, the longest a consumer's can be: each takes 71
	// bytes of the manifest, so a million exceed MaxManifestSize.
	const n = 1_000_000
	r := Record{Type: TypeEvent, Flow: FlowAgentSubscribe, Data: []byte{1}}
	for i := range n {
		r.Actor = fmt.Sprintf("%063d", i)
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "1000000 consumers") || !strings.Contains(err.Error(), "64 MiB") {
		t.Fatalf("Close with %d consumers: %v; want an error naming the limit and the consumers", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); !os.IsNotExist(err) {
		t.Errorf("a manifest was written: %v", err)
	}
}
