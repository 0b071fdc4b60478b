package format

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Verify checks a whole trace: the manifest's digest and arithmetic, that
// no segment is missing or extra, and for every segment its size, SHA-256,
// zstd framing and checksum, record framing and CRC32C, offset order,
// record count and offsets; then the manifest's counts by flow and type,
// consumers and sources against the records. It returns the first problem
// found (in segment order), or nil.
func Verify(dir string) error {
	if errs := VerifyAll(dir); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// VerifyAll is Verify that goes on after a damaged segment and returns
// every problem found, in segment order. A bad manifest stops it early.
func VerifyAll(dir string) []error {
	m, err := ReadManifest(dir)
	if err != nil {
		return []error{err}
	}
	return verifyStore(m, newDirStore(dir, m))
}

// verifyStore checks every segment of st against m, then the manifest's
// derived fields against the records and what follows the last segment.
// Segments are loaded in order and checked in parallel.
func verifyStore(m *Manifest, st store) []error {
	workers := runtime.GOMAXPROCS(0)
	checked, err := newDecoder(workers)
	if err != nil {
		return []error{err}
	}
	defer checked.Close()
	dec := readerDecoders{checked: checked} // every checksum, SHA-256 or not

	type segCheck struct {
		tally       tally
		first, last time.Duration
		path        string
		read        bool
		err         error
	}
	type job struct {
		i    int
		b    []byte
		path string
	}
	checks := make([]segCheck, len(m.Segments))
	var wg sync.WaitGroup
	next := make(chan job)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				c := &checks[j.i]
				recs, _, err := decodeSegmentFile(dec, j.path, j.b, &m.Segments[j.i], segBuf{})
				if err != nil {
					c.err = st.locate(j.i, err)
					continue
				}
				c.tally = newTally()
				for k := range recs {
					c.tally.add(&recs[k])
				}
				c.first, c.last = recs[0].Offset, recs[len(recs)-1].Offset
				c.read = true
			}
		}()
	}
	unreadable := false
	for i := range m.Segments {
		b, path, err := st.segment(i, &m.Segments[i])
		checks[i].path = path
		switch {
		case errors.Is(err, errUnreadable):
			unreadable = true
		case err != nil:
			checks[i].err = err
		default:
			next <- job{i, b, path}
		}
	}
	close(next)
	wg.Wait()

	var errs []error
	total := newTally()
	var last time.Duration
	complete := !unreadable
	for i, c := range checks {
		if c.err != nil {
			errs = append(errs, c.err)
			complete = false
			continue
		}
		if !c.read {
			continue // an earlier error left the store unreadable
		}
		if c.first < last {
			errs = append(errs, st.locate(i, streamErr(c.path, int64(segmentHeaderSize), 0,
				fmt.Errorf("%w: first offset %d ns is before the previous segment's last %d ns", ErrOrder, c.first, last))))
		}
		last = c.last
		total.merge(&c.tally)
	}
	if !unreadable {
		errs = append(errs, st.rest(m)...)
	}
	if complete {
		if err := total.check(m); err != nil {
			errs = append(errs, st.locate(-1, fileErr("", 0, err)))
		}
	}
	return errs
}

// extraFiles reports segment files in dir that the manifest does not name:
// a manifest from another write, or files added by hand.
func extraFiles(dir string, m *Manifest) []error {
	if dir == "" {
		return nil
	}
	names := map[string]bool{}
	for _, s := range m.Segments {
		names[s.Name] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []error{fmt.Errorf("format: verify: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), SegmentExt) && !names[e.Name()] {
			errs = append(errs, fileErr(filepath.Join(dir, e.Name()), 0,
				fmt.Errorf("%w: segment file %s is not named in the manifest (%d segments)", ErrManifest, e.Name(), len(m.Segments))))
		}
	}
	return errs
}

// tally is what the manifest derives from the records.
type tally struct {
	records, outcomes int64
	flows             [FlowSourceSubscribe + 1]int64
	types             map[string]int64
	consumers         map[string]struct{}
	sources           map[string]struct{}
}

func newTally() tally {
	return tally{types: map[string]int64{}, consumers: map[string]struct{}{}, sources: map[string]struct{}{}}
}

func (t *tally) add(r *Record) {
	t.records++
	if r.Type == TypeOutcome {
		t.outcomes++
		return
	}
	t.flows[r.Flow]++
	if r.EventType != "" {
		t.types[r.EventType]++
	}
	if r.Actor == "" {
		return
	}
	if r.Flow.Agent() {
		t.consumers[r.Actor] = struct{}{}
	} else {
		t.sources[r.Actor] = struct{}{}
	}
}

func (t *tally) merge(o *tally) {
	t.records += o.records
	t.outcomes += o.outcomes
	for i, n := range o.flows {
		t.flows[i] += n
	}
	for k, n := range o.types {
		t.types[k] += n
	}
	maps.Copy(t.consumers, o.consumers)
	maps.Copy(t.sources, o.sources)
}

func (t *tally) flowCounts() map[string]int64 {
	c := map[string]int64{}
	for f, n := range t.flows {
		if n > 0 {
			c[Flow(f).String()] = n
		}
	}
	return c
}

// check compares the tally with the manifest's derived fields.
func (t *tally) check(m *Manifest) error {
	switch {
	case t.records != m.Records:
		return fmt.Errorf("%w: records %d, the segments hold %d", ErrManifest, m.Records, t.records)
	case t.outcomes != m.Outcomes:
		return fmt.Errorf("%w: outcomes %d, the segments hold %d", ErrManifest, m.Outcomes, t.outcomes)
	case !maps.Equal(t.flowCounts(), nonNil(m.CountsByFlow)):
		return fmt.Errorf("%w: counts_by_flow %v, the segments hold %v", ErrManifest, m.CountsByFlow, t.flowCounts())
	case !maps.Equal(t.types, nonNil(m.CountsByType)):
		return fmt.Errorf("%w: counts_by_type %v, the segments hold %v", ErrManifest, m.CountsByType, t.types)
	case !slices.Equal(sortedKeys(t.consumers), m.Consumers):
		return fmt.Errorf("%w: consumers list (%d) differs from the agent actors in the segments (%d)", ErrManifest, len(m.Consumers), len(t.consumers))
	case !slices.Equal(sortedKeys(t.sources), m.Sources):
		return fmt.Errorf("%w: sources list (%d) differs from the source actors in the segments (%d)", ErrManifest, len(m.Sources), len(t.sources))
	}
	return nil
}

func nonNil(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}
