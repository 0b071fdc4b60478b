package format

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// tmpExt marks a checkpointing Writer's segment file until a checkpoint
// renames it into place.
const tmpExt = ".tmp"

// committer writes a checkpointing Writer's manifests in a goroutine of
// its own, so that Write never waits for a disk sync: each seal hands it
// the manifest of the records up to that seal, and it writes the newest
// one once every segment it names is written. A manifest waiting for its
// segments is replaced by a newer one.
type committer struct {
	w *Writer

	mu      sync.Mutex
	cond    *sync.Cond
	next    *Manifest // the newest manifest to write (Segments not yet set)
	asked   int       // segments the newest request names
	done    int       // segments named by the manifest on disk
	reqSeq  int       // requests made
	doneSeq int       // the request whose manifest is on disk
	written int       // segments written, in a row from the first
	manif   *Manifest // the manifest on disk
	err     error
	quit    bool
	exited  chan struct{}
}

func newCommitter(w *Writer) *committer {
	c := &committer{w: w, exited: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

// requestCommit asks for a manifest of every record written so far; the
// segment being filled must be empty (just sealed). It copies what the
// manifest derives from the records, not the segments.
func (w *Writer) requestCommit() {
	m := &Manifest{
		FormatVersion: FormatVersion,
		Provenance:    w.prov.clone(),
		Consumers:     sortedKeys(w.tally.consumers),
		Sources:       sortedKeys(w.tally.sources),
		Records:       w.tally.records,
		Outcomes:      w.tally.outcomes,
		CountsByFlow:  w.tally.flowCounts(),
		CountsByType:  maps.Clone(w.tally.types),
		FirstOffset:   w.first,
		LastOffset:    w.last,
		SegmentSize:   int64(w.segmentSize),
		Level:         w.level,
	}
	c := w.commit
	c.mu.Lock()
	c.next, c.asked = m, w.nseg
	c.reqSeq++
	c.mu.Unlock()
	c.cond.Broadcast()
}

// segmentWritten is called by a worker after it recorded a segment in
// w.infos.
func (c *committer) segmentWritten() {
	c.mu.Lock() // c.mu before w.mu, as in run
	c.w.mu.Lock()
	for c.written < len(c.w.infos) && c.w.infos[c.written].Name != "" {
		c.written++
	}
	c.w.mu.Unlock()
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *committer) run() {
	defer close(c.exited)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for !c.quit && c.err == nil && (c.next == nil || c.written < c.asked) {
			c.cond.Wait()
		}
		if c.quit || c.err != nil {
			return
		}
		m, n, seq := c.next, c.asked, c.reqSeq
		c.next = nil
		c.mu.Unlock()
		err := c.write(m, n)
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.w.mu.Lock()
			if c.w.jobErr == nil {
				c.w.jobErr = err // Write and Close report it
			}
			c.w.mu.Unlock()
		} else {
			c.done, c.manif, c.doneSeq = n, m, seq
		}
		c.cond.Broadcast()
	}
}

// write renames the segments m names that are still under their temporary
// names, syncs them and writes m. A crash between the rename and the
// manifest leaves segment files the manifest on disk does not name.
func (c *committer) write(m *Manifest, n int) error {
	c.w.mu.Lock()
	if err := c.w.jobErr; err != nil {
		c.w.mu.Unlock()
		return err
	}
	m.Segments = slices.Clone(c.w.infos[:n])
	c.w.mu.Unlock()
	for _, s := range m.Segments {
		m.RawBytes += s.RawBytes
		m.CompressedBytes += s.CompressedBytes
	}
	fresh := m.Segments[c.done:]
	for _, seg := range fresh {
		path := filepath.Join(c.w.dir, seg.Name)
		if err := os.Rename(path+tmpExt, path); err != nil {
			return fmt.Errorf("format: checkpoint: %w", err)
		}
	}
	if err := syncFiles(c.w.dir, fresh); err != nil {
		return fmt.Errorf("format: checkpoint: sync segments: %w", err)
	}
	b, err := encodeManifest(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.w.dir, ManifestName), b); err != nil {
		return fmt.Errorf("format: checkpoint: write manifest: %w", err)
	}
	return nil
}

// wait blocks until the manifest of the latest request is on disk (or the
// committer failed or stopped) and returns the committer's error.
func (c *committer) wait() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.quit && c.doneSeq < c.reqSeq {
		c.cond.Wait()
	}
	return c.err
}

// stop ends the committer after the manifest it is writing, if any.
func (c *committer) stop() {
	c.mu.Lock()
	c.quit = true
	c.mu.Unlock()
	c.cond.Broadcast()
	<-c.exited
}

// last is the manifest on disk, or nil.
func (c *committer) last() *Manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.manif
}

// Checkpoint seals the segment being filled, if it holds records, and asks
// for the folder to become a valid trace of every record written so far
// (see WriterOptions.Checkpoints, which it needs): the manifest is written
// in the background once the segments are; Sync waits for it. Writing goes
// on meanwhile. Errors of earlier checkpoints are returned here and by
// Write.
func (w *Writer) Checkpoint() error {
	switch {
	case w.closed:
		return ErrWriteAfterClose
	case w.err != nil:
		return w.err
	case !w.checkpoints:
		return errors.New("format: Checkpoint needs WriterOptions.Checkpoints")
	}
	if w.cur.Records > 0 {
		w.err = w.seal()
	} else if err := w.workerErr(); err != nil {
		w.err = err
	} else {
		w.requestCommit()
	}
	return w.err
}

// Sync waits until the manifest of the last checkpoint is on disk.
func (w *Writer) Sync() error {
	if w.commit == nil {
		return errors.New("format: Sync needs WriterOptions.Checkpoints")
	}
	return w.commit.wait()
}

// SetProvenance replaces the provenance that the next manifest written
// (by a checkpoint or Close) carries: a recorder's end time, for example.
func (w *Writer) SetProvenance(p Provenance) { w.prov = p.clone() }

// closeCheckpointed is Close for a checkpointing Writer: a last
// checkpoint of every record, waited for.
func (w *Writer) closeCheckpointed() error {
	if w.err == nil {
		if w.cur.Records > 0 {
			w.err = w.seal()
		} else {
			w.requestCommit()
		}
	}
	w.closed = true
	w.stop()
	if w.err == nil {
		w.err = w.commit.wait()
	}
	w.commit.stop()
	if w.err == nil {
		w.err = w.workerErr()
	}
	return w.err
}
