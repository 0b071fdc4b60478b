package format

import (
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
	var errs []error
	errs = append(errs, extraFiles(dir, m)...)

	workers := runtime.GOMAXPROCS(0)
	dec, err := newDecoder(workers)
	if err != nil {
		return append(errs, err)
	}
	defer dec.Close()

	type segCheck struct {
		tally       tally
		first, last time.Duration
		err         error
	}
	checks := make([]segCheck, len(m.Segments))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				info := &m.Segments[i]
				path := filepath.Join(dir, info.Name)
				if _, err := os.Stat(path); os.IsNotExist(err) {
					checks[i].err = fileErr(path, 0, fmt.Errorf("%w: segment %d of %d named in the manifest is not there", ErrMissingSegment, i+1, len(m.Segments)))
					continue
				}
				recs, err := readSegment(dec, path, info)
				if err != nil {
					checks[i].err = err
					continue
				}
				checks[i].tally = newTally()
				for j := range recs {
					checks[i].tally.add(&recs[j])
				}
				checks[i].first, checks[i].last = recs[0].Offset, recs[len(recs)-1].Offset
			}
		}()
	}
	for i := range m.Segments {
		next <- i
	}
	close(next)
	wg.Wait()

	total := newTally()
	var last time.Duration
	complete := true
	for i, c := range checks {
		if c.err != nil {
			errs = append(errs, c.err)
			complete = false
			continue
		}
		if c.first < last {
			errs = append(errs, streamErr(filepath.Join(dir, m.Segments[i].Name), int64(segmentHeaderSize), 0,
				fmt.Errorf("%w: first offset %d ns is before the previous segment's last %d ns", ErrOrder, c.first, last)))
		}
		last = c.last
		total.merge(&c.tally)
	}
	if complete {
		if err := total.check(m); err != nil {
			errs = append(errs, fileErr(filepath.Join(dir, ManifestName), 0, err))
		}
	}
	return errs
}

// extraFiles reports segment files in dir that the manifest does not name:
// a manifest from another write, or files added by hand.
func extraFiles(dir string, m *Manifest) []error {
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
