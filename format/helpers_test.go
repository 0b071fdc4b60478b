package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// golden are real wire messages encoded by the SDK (testdata/protocol/examples):
// a spec create (4.6 KB), statuses of 8.1 and 8.6 KB and a forwarded
// status of 12 KB, so record sizes span 4-12 KB.
var goldenNames = []string{
	"01-source-spec-create_request.pb.bin",
	"03rb-agent-status-update_request-realistic-available.pb.bin",
	"03-agent-status-update_request.pb.bin",
	"04r-server-to-source-status-update_request-realistic.pb.bin",
}

// Every UUID and timestamp in a golden message is rewritten per record
// with a value of the same length, so records differ like real traffic
// (event ids, work uids, condition times) and the protobuf stays valid.
var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timePattern = regexp.MustCompile(`20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z`)
)

type corpus struct {
	msgs  [][]byte
	uuids [][][]int // per message: positions of each distinct UUID
	times [][]int   // per message: positions of timestamps
}

func loadCorpus(tb testing.TB) *corpus {
	tb.Helper()
	dir := fixtures.Examples(tb)
	c := &corpus{}
	for _, name := range goldenNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		byValue := map[string]int{}
		var uuids [][]int
		for _, loc := range uuidPattern.FindAllIndex(b, -1) {
			v := string(b[loc[0]:loc[1]])
			k, ok := byValue[v]
			if !ok {
				k = len(uuids)
				byValue[v] = k
				uuids = append(uuids, nil)
			}
			uuids[k] = append(uuids[k], loc[0])
		}
		var times []int
		for _, loc := range timePattern.FindAllIndex(b, -1) {
			times = append(times, loc[0])
		}
		c.msgs = append(c.msgs, b)
		c.uuids = append(c.uuids, uuids)
		c.times = append(c.times, times)
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
	var id string
	for j, at := range c.uuids[k] {
		u := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i, j, i%4096, (i*31+j)%4096, uint64(i)*0x9e3779b97f4a7c15>>16)
		if j == 0 {
			id = u
		}
		for _, p := range at {
			copy(buf[p:], u)
		}
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 50 * time.Millisecond)
	var stamps [7][20]byte
	for j := range stamps {
		t0.Add(time.Duration(j)*time.Second).AppendFormat(stamps[j][:0], "2006-01-02T15:04:05Z")
	}
	for j, at := range c.times[k] {
		copy(buf[at:], stamps[j%7][:])
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

func sha256sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
