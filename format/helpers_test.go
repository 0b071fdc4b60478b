package format

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedDir finds ../shared beside the repository root (the folder that
// holds go.mod), or skips the test when it is truly absent.
func sharedDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		tb.Skipf("shared reference folder absent: %v", err)
	}
	return shared
}

// golden are real wire messages encoded by the SDK (protocol/examples):
// a spec create (4.6 KB), statuses of 8.1 and 8.6 KB and a forwarded
// status of 12 KB, so record sizes span 4-12 KB.
var goldenNames = []string{
	"01-source-spec-create_request.pb.bin",
	"03rb-agent-status-update_request-realistic-available.pb.bin",
	"03-agent-status-update_request.pb.bin",
	"04r-server-to-source-status-update_request-realistic.pb.bin",
}

// The event id and work uid in the golden messages; makeRecord replaces
// them with per-record values of the same length, so every record differs
// like real traffic does and the protobuf stays valid.
var (
	goldenEventID = []byte("5f0c3a8e-2b0e-4a52-9d0e-7b7d3f0c9a11")
	goldenWorkUID = []byte("dda8b541-0bb7-5b43-b48c-ffff60a10ea1")
)

type corpus struct {
	msgs [][]byte
	// positions of the ids to rewrite in each message
	ids [][]int
}

func loadCorpus(tb testing.TB) *corpus {
	tb.Helper()
	dir := filepath.Join(sharedDir(tb), "protocol", "examples")
	c := &corpus{}
	for _, name := range goldenNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		var at []int
		for _, needle := range [][]byte{goldenEventID, goldenWorkUID} {
			for off := 0; ; {
				i := bytes.Index(b[off:], needle)
				if i < 0 {
					break
				}
				at = append(at, off+i)
				off += i + len(needle)
			}
		}
		c.msgs = append(c.msgs, b)
		c.ids = append(c.ids, at)
	}
	return c
}

var eventTypes = []string{
	"io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request",
	"io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request",
	"io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request",
	"io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request",
}

var eventFlows = []Flow{FlowSourceToServer, FlowAgentToServer, FlowServerToAgent, FlowServerToSource}

// makeRecord builds record i of a deterministic test trace into r, reusing
// buf for Data. Offsets advance 50 ms per record like a 20/s workload.
func (c *corpus) makeRecord(i int, r *Record, buf []byte) []byte {
	k := i % len(c.msgs)
	buf = append(buf[:0], c.msgs[k]...)
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*7919)
	for _, at := range c.ids[k] {
		copy(buf[at:], id)
	}
	cluster := fmt.Sprintf("cluster-%d", i/100%300)
	*r = Record{
		Type:       TypeEvent,
		Offset:     time.Duration(i) * 50 * time.Millisecond,
		Flow:       eventFlows[k],
		Actor:      cluster,
		ResourceID: id,
		EventType:  eventTypes[k],
		Data:       buf,
	}
	if r.Flow == FlowSourceToServer || r.Flow == FlowServerToSource {
		r.Actor = "maestro-source"
	}
	if k == 1 {
		r.HasTrigger, r.Trigger, r.Delay = true, uint64(i-1), 120*time.Millisecond
	}
	return buf
}

// writeTrace writes n records of the corpus to a new trace in dir.
func writeTrace(tb testing.TB, c *corpus, dir string, n int, o WriterOptions) *Manifest {
	tb.Helper()
	w, err := Create(dir, o)
	if err != nil {
		tb.Fatal(err)
	}
	var r Record
	var buf []byte
	for i := range n {
		buf = c.makeRecord(i, &r, buf)
		if err := w.Write(&r); err != nil {
			tb.Fatalf("write record %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return w.Manifest()
}

func equalRecords(a, b *Record) bool {
	return a.Type == b.Type && a.Offset == b.Offset && a.Flow == b.Flow && a.Actor == b.Actor &&
		a.ResourceID == b.ResourceID && a.EventType == b.EventType && a.HasTrigger == b.HasTrigger &&
		a.Trigger == b.Trigger && a.Delay == b.Delay && bytes.Equal(a.Data, b.Data) && a.Outcome == b.Outcome
}
