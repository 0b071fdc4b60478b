package format

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// WriterOptions tune a Writer. The zero value is usable.
type WriterOptions struct {
	// SegmentSize is the raw (decompressed) size at which a new segment
	// starts; 0 means DefaultSegmentSize. A segment holds at least one
	// record, so a single larger record makes a larger segment.
	SegmentSize int64
	// Workers compress segments in parallel; 0 means GOMAXPROCS, and at
	// most MaxWorkers. The output does not depend on it. Memory is about
	// (2*Workers+1)*SegmentSize.
	Workers int
	// Level is a zstd level (1 fastest .. 22 smallest, mapped by
	// klauspost/compress to its four encoders); 0 means DefaultLevel.
	Level int
	// Provenance goes into the manifest as given.
	Provenance Provenance
	// Checkpoints keeps the folder a valid trace while it is written, for
	// a recorder that may be killed at any time: every sealed segment is
	// written under a temporary name (NAME.tmp, which readers ignore);
	// after each seal a goroutine of the Writer waits for it and every
	// segment before it, renames them into place, syncs them and rewrites
	// manifest.json atomically to name every record up to that seal.
	// Write never waits for it. Checkpoint seals on demand, Sync waits.
	Checkpoints bool
}

// MaxWorkers bounds WriterOptions.Workers: 4 × GOMAXPROCS. More
// compressors than CPUs only wait their turn, and each holds an encoder
// and segment buffers.
func MaxWorkers() int { return 4 * runtime.GOMAXPROCS(0) }

// DefaultLevel is the zstd level used when WriterOptions.Level is 0
// (klauspost/compress SpeedDefault). On trace payloads it measured both
// smaller and cheaper in CPU, to write and to read, than level 1 (see
// FORMAT.md "Compression").
const DefaultLevel = 3

// Writer writes a trace folder. Records must come in non-decreasing
// offset order. Segments are compressed by background workers; the
// manifest is written by Close, last. A Writer is not safe for
// concurrent use.
type Writer struct {
	dir         string
	segmentSize int
	level       int
	prov        Provenance

	buf  []byte      // raw stream of the segment being filled
	cur  SegmentInfo // its statistics
	nseg int         // segments sealed so far

	jobs   chan segJob
	free   chan []byte // raw buffers for reuse, bounded
	wg     sync.WaitGroup
	mu     sync.Mutex
	infos  []SegmentInfo // by segment number - 1; filled by workers
	jobErr error         // first worker error

	err      error // sticky
	closed   bool
	stopped  bool // jobs closed, workers done
	manifest *Manifest

	tally       tally // what the manifest derives from the records
	first, last time.Duration

	checkpoints bool
	commit      *committer // with checkpoints: writes the manifests

	created bool // Create made the folder (Discard may remove it)
}

type segJob struct {
	n    int // 1-based segment number
	raw  []byte
	info SegmentInfo
}

// Create starts a trace in dir, creating the folder if needed. It refuses
// a folder that already holds a trace or segment files.
func Create(dir string, o WriterOptions) (*Writer, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < 1<<10 || o.SegmentSize > MaxSegmentSize {
		return nil, fmt.Errorf("format: segment size %d out of range [1024, %d]", o.SegmentSize, MaxSegmentSize)
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Workers < 0 || o.Workers > MaxWorkers() {
		return nil, fmt.Errorf("format: %d compression workers is outside 1..%d (4 × GOMAXPROCS)", o.Workers, MaxWorkers())
	}
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	if o.Level < 1 || o.Level > 22 {
		return nil, fmt.Errorf("format: zstd level %d out of range [1, 22]", o.Level)
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("format: create trace folder: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		return nil, fmt.Errorf("format: %s already holds a trace (%s exists)", dir, ManifestName)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt)); len(segs) > 0 {
		return nil, fmt.Errorf("format: %s already holds segment files (%s): remove them or pick another folder", dir, filepath.Base(segs[0]))
	}
	w := &Writer{
		dir:         dir,
		segmentSize: int(o.SegmentSize),
		level:       o.Level,
		prov:        o.Provenance.clone(),
		jobs:        make(chan segJob, o.Workers),
		free:        make(chan []byte, 2*o.Workers+1),
		tally:       newTally(),
		checkpoints: o.Checkpoints,
		created:     errors.Is(statErr, os.ErrNotExist),
	}
	for range o.Workers {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(o.Level)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(encoderWindow(o.SegmentSize)),
			zstd.WithEncoderCRC(true))
		if err != nil {
			close(w.jobs)
			w.wg.Wait()
			return nil, fmt.Errorf("format: zstd encoder: %w", err)
		}
		w.wg.Add(1)
		go w.compressLoop(enc, w.jobs)
	}
	w.buf = w.newBuf()
	if o.Checkpoints {
		w.commit = newCommitter(w)
	}
	return w, nil
}

// encoderWindow is the zstd window for segments of segmentSize: the
// smallest power of two that holds one, at most zstd's default 8 MiB. Each
// segment is a frame of its own, compressed in one call, so no match
// reaches before its start and a larger window buys nothing; the encoder
// keeps a history of twice its window, so the default window cost every
// compressor 16 MiB where 8 serve 4 MiB segments (a replay's outcome
// writer holds one for the whole run).
func encoderWindow(segmentSize int64) int {
	w := zstd.MinWindowSize
	for w < 8<<20 && int64(w) < segmentSize {
		w <<= 1
	}
	return w
}

func (w *Writer) newBuf() []byte {
	select {
	case b := <-w.free:
		return appendSegmentHeader(b[:0])
	default:
		return appendSegmentHeader(make([]byte, 0, w.segmentSize+64<<10))
	}
}

// Write appends r. A record whose offset is before the previous record's
// gives ErrOrder; an invalid record an error saying why. Write copies what
// it needs: the caller may reuse r and r.Data. After an error, every
// later Write returns the same error.
func (w *Writer) Write(r *Record) error {
	if w.closed {
		return ErrWriteAfterClose
	}
	if w.err != nil {
		return w.err
	}
	size := recordBodySize(r)
	if err := r.validateFields(); err != nil {
		return fmt.Errorf("format: record %d: %w", w.tally.records, err)
	}
	if err := checkSize(size); err != nil {
		return fmt.Errorf("format: record %d: %w", w.tally.records, err)
	}
	if r.Offset < w.last {
		// Not sticky: the caller can skip or fix the record.
		return fmt.Errorf("%w: record %d has offset %d ns, before the previous record's %d ns", ErrOrder, w.tally.records, r.Offset, w.last)
	}
	frame := uvarintSize(uint64(size)) + size + 4
	if w.cur.Records > 0 && len(w.buf)+frame > w.segmentSize {
		if err := w.seal(); err != nil {
			w.err = err
			return err
		}
	}
	w.buf = appendRecord(w.buf, r, size)
	if w.cur.Records == 0 {
		w.cur.FirstOffset = r.Offset
	}
	w.cur.Records++
	w.cur.LastOffset = r.Offset
	if w.tally.records == 0 {
		w.first = r.Offset
	}
	w.last = r.Offset
	w.tally.add(r)
	return nil
}

// seal hands the current segment to the compression workers.
func (w *Writer) seal() error {
	if err := w.workerErr(); err != nil {
		return err
	}
	w.nseg++
	w.cur.Name = SegmentName(w.nseg)
	w.cur.RawBytes = int64(len(w.buf))
	w.jobs <- segJob{n: w.nseg, raw: w.buf, info: w.cur}
	w.cur = SegmentInfo{}
	w.buf = w.newBuf()
	if w.checkpoints {
		w.requestCommit()
	}
	return nil
}

func (w *Writer) workerErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jobErr
}

func (w *Writer) compressLoop(enc *zstd.Encoder, jobs <-chan segJob) {
	defer w.wg.Done()
	defer enc.Close()
	var comp []byte
	for job := range jobs {
		if w.workerErr() != nil {
			continue // drain without work after a failure
		}
		comp = enc.EncodeAll(job.raw, comp[:0])
		select {
		case w.free <- job.raw:
		default:
		}
		sum := sha256.Sum256(comp)
		job.info.CompressedBytes = int64(len(comp))
		job.info.SHA256 = hex.EncodeToString(sum[:])
		path := filepath.Join(w.dir, job.info.Name)
		if w.checkpoints {
			path += tmpExt
		}
		err := writeNewFile(path, comp)
		w.mu.Lock()
		if err != nil && w.jobErr == nil {
			w.jobErr = fmt.Errorf("format: write segment: %w", err)
		}
		for len(w.infos) < job.n {
			w.infos = append(w.infos, SegmentInfo{})
		}
		w.infos[job.n-1] = job.info
		w.mu.Unlock()
		if w.commit != nil {
			w.commit.segmentWritten()
		}
	}
}

// writeNewFile writes b to a file that must not exist yet. Close syncs it
// later, with the others, before the manifest.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncFiles fsyncs the segment files so that the manifest, written after,
// never names a segment lost in a crash. The syncs run concurrently: a
// file system commits concurrent syncs together, where one at a time
// would cost a disk flush per segment.
func syncFiles(dir string, segs []SegmentInfo) error {
	var wg sync.WaitGroup
	errs := make([]error, len(segs))
	sem := make(chan struct{}, 32)
	for i := range segs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f, err := os.Open(filepath.Join(dir, segs[i].Name))
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = f.Sync()
			f.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stop flushes nothing more and waits for the workers.
func (w *Writer) stop() {
	if !w.stopped {
		close(w.jobs)
		w.stopped = true
		w.wg.Wait()
	}
}

// Abort stops the Writer without writing the manifest, leaving an
// unfinished trace that readers refuse (or, with Checkpoints, the trace of
// the last checkpoint). Use it when the records cannot be completed (a
// cancelled generation, a recorder's full disk). It is a no-op after Close.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.mu.Lock()
	if w.jobErr == nil {
		w.jobErr = errAborted // the workers skip the segments still queued
	}
	w.mu.Unlock()
	w.stop()
	if w.commit != nil {
		w.commit.stop()
	}
	if w.err == nil {
		w.err = errAborted
	}
}

var errAborted = errors.New("format: writer aborted")

// Discard stops the Writer like Abort and removes what it wrote: its
// segment files, a manifest written by a checkpoint, and the folder if
// Create made it and nothing else is in it. Use it when a partial trace is
// of no use, so that nothing is left to mistake for one (an interrupted
// generation). It is a no-op after a successful Close.
func (w *Writer) Discard() error {
	if w.closed && w.err == nil {
		return nil
	}
	w.Abort()
	names := []string{ManifestName, ManifestName + tmpExt}
	if w.Manifest() == nil {
		names = names[1:] // a manifest there is not this Writer's
	}
	for n := 1; n <= w.nseg; n++ {
		names = append(names, SegmentName(n), SegmentName(n)+tmpExt)
	}
	var errs []error
	for _, name := range names {
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("format: discard %s: %w", w.dir, err)
	}
	if w.created {
		os.Remove(w.dir) // fails, as it should, when something else is in it
	}
	return nil
}

// Close compresses what remains, waits for the workers and writes
// manifest.json (to a temporary file, then renamed). A second Close
// returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return w.err // nil after a successful Close
	}
	if w.checkpoints {
		return w.closeCheckpointed()
	}
	if w.err == nil && w.cur.Records > 0 {
		w.err = w.seal()
	}
	w.closed = true
	w.stop()
	if w.err != nil {
		return w.err
	}
	if err := w.workerErr(); err != nil {
		w.err = err
		return err
	}
	m := w.buildManifest()
	if err := syncFiles(w.dir, m.Segments); err != nil {
		w.err = fmt.Errorf("format: sync segments: %w", err)
		return w.err
	}
	b, err := encodeManifest(m)
	if err != nil {
		w.err = err
		return err
	}
	if err := writeFileAtomic(filepath.Join(w.dir, ManifestName), b); err != nil {
		w.err = fmt.Errorf("format: write manifest: %w", err)
		return w.err
	}
	w.manifest = m
	return nil
}

func (w *Writer) buildManifest() *Manifest {
	m := &Manifest{
		FormatVersion: FormatVersion,
		Provenance:    w.prov,
		Consumers:     sortedKeys(w.tally.consumers),
		Sources:       sortedKeys(w.tally.sources),
		Records:       w.tally.records,
		Outcomes:      w.tally.outcomes,
		CountsByFlow:  w.tally.flowCounts(),
		CountsByType:  w.tally.types,
		FirstOffset:   w.first,
		LastOffset:    w.last,
		SegmentSize:   int64(w.segmentSize),
		Level:         w.level,
		Segments:      slices.Clone(w.infos),
	}
	if m.Segments == nil {
		m.Segments = []SegmentInfo{}
	}
	for _, s := range m.Segments {
		m.RawBytes += s.RawBytes
		m.CompressedBytes += s.CompressedBytes
	}
	return m
}

func sortedKeys(set map[string]struct{}) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Manifest returns the manifest written by Close (or by the last
// checkpoint), or nil before one.
func (w *Writer) Manifest() *Manifest {
	if w.commit != nil {
		return w.commit.last()
	}
	return w.manifest
}

// writeFileAtomic writes path via a synced temporary file and a rename,
// so path either does not exist or is complete.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: makes the rename durable on most file systems
		d.Close()
	}
	return nil
}
