package record

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// item is one record on its way to the writer, with the keys the linker
// needs. Its index and offset are set when it is queued.
type item struct {
	rec  format.Record
	keys maestro.Keys
	ok   bool // keys were decoded
}

// trace funnels records from every proxied call to the one goroutine that
// writes them. Queueing takes a lock so that the order of the queue is the
// order of the offsets and of the indexes that triggers name.
type trace struct {
	w         *format.Writer
	prov      format.Provenance
	start     time.Time
	sealEvery time.Duration
	budget    int64 // bytes of queued messages before the recording gives up

	mu      sync.Mutex
	q       chan item
	next    uint64        // index of the next record
	last    time.Duration // offset of the last record queued
	stopped bool
	stopErr error

	queued  atomic.Int64 // bytes in q
	written atomic.Int64 // records written
	done    chan struct{}
	closeEr error // what closing the writer returned
	link    linker
	onFail  func(error)
}

// queueItems bounds the queue's length; budget bounds its bytes.
const queueItems = 1 << 16

func newTrace(w *format.Writer, prov format.Provenance, sealEvery time.Duration, budget int64, onFail func(error)) *trace {
	t := &trace{
		w: w, prov: prov, start: time.Now(), sealEvery: sealEvery, budget: budget,
		q: make(chan item, queueItems), done: make(chan struct{}), link: newLinker(), onFail: onFail,
	}
	t.prov.Params["start"] = t.start.UTC().Format(time.RFC3339Nano)
	go t.run()
	return t
}

// errBehind stops a recording whose writer cannot keep up with the traffic.
var errBehind = errors.New("record: the trace writer fell behind the traffic (its queue passed its byte budget); the recording stopped, the proxy goes on")

// add queues r and returns its index, or false when the recording has
// stopped. It keeps r.Data until it is written: the caller must not change
// it (every proxied message has a buffer of its own).
func (t *trace) add(r format.Record, keys maestro.Keys, ok bool) (uint64, bool) {
	n := int64(len(r.Data))
	if t.queued.Add(n) > t.budget {
		t.queued.Add(-n)
		t.stop(errBehind)
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		t.queued.Add(-n)
		return 0, false
	}
	r.Offset = max(time.Since(t.start), t.last)
	t.last = r.Offset
	select {
	case t.q <- item{rec: r, keys: keys, ok: ok}:
	default:
		t.queued.Add(-n)
		t.stopLocked(errBehind)
		return 0, false
	}
	i := t.next
	t.next++
	return i, true
}

// stop ends the recording: nothing more is queued, the writer writes what
// is queued and closes the trace (err nil), or gives up at its last
// checkpoint (err set).
func (t *trace) stop(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopLocked(err)
}

func (t *trace) stopLocked(err error) {
	if t.stopped {
		return
	}
	t.stopped, t.stopErr = true, err
	close(t.q)
	if err != nil && t.onFail != nil {
		go t.onFail(err)
	}
}

// err is why the recording stopped early, or nil.
func (t *trace) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopErr
}

// run writes the queue and checkpoints every sealEvery; it ends when stop
// closes the queue.
func (t *trace) run() {
	defer close(t.done)
	tick := time.NewTicker(t.sealEvery)
	defer tick.Stop()
	var lastPrune time.Duration
	for {
		select {
		case it, ok := <-t.q:
			if !ok {
				t.finish()
				return
			}
			t.queued.Add(-int64(len(it.rec.Data)))
			if err := t.write(&it); err != nil {
				t.fail(err)
				return
			}
		case <-tick.C:
			t.w.SetProvenance(t.provenance())
			if err := t.w.Checkpoint(); err != nil {
				t.fail(fmt.Errorf("record: checkpoint: %w", err))
				return
			}
			if now := time.Since(t.start); now-lastPrune > linkHorizon/60 {
				t.link.prune(now - linkHorizon)
				lastPrune = now
			}
		}
	}
}

func (t *trace) write(it *item) error {
	if it.rec.Type == format.TypeEvent {
		// Records are written in the order their indexes were given.
		t.link.link(&it.rec, uint64(t.written.Load()), it.keys, it.ok)
	}
	if err := t.w.Write(&it.rec); err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	t.written.Add(1)
	return nil
}

// fail stops the recording after a write error: the trace stays as its
// last checkpoint left it, and the queue is drained so nothing waits.
func (t *trace) fail(err error) {
	t.stop(err)
	t.w.Abort()
	t.closeEr = err
	for it := range t.q {
		t.queued.Add(-int64(len(it.rec.Data)))
	}
}

// finish writes what is queued and closes the trace. A recording that
// stopped because the writer fell behind is still a whole trace of what
// was queued before it stopped; that it stopped early is its error.
func (t *trace) finish() {
	t.w.SetProvenance(t.provenance())
	if err := t.w.Close(); err != nil {
		t.closeEr = fmt.Errorf("record: close trace: %w", err)
		return
	}
	t.closeEr = t.err()
}

// provenance is the manifest's provenance with the end set to now.
func (t *trace) provenance() format.Provenance {
	p := t.prov
	p.Params = make(map[string]string, len(t.prov.Params)+1)
	for k, v := range t.prov.Params {
		p.Params[k] = v
	}
	p.Params["end"] = time.Now().UTC().Format(time.RFC3339Nano)
	return p
}

// close stops the recording, waits for the writer and returns the first
// error of the recording.
func (t *trace) close() error {
	t.stop(nil)
	<-t.done
	return t.closeEr
}

func (t *trace) isStopped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}
