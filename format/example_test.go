package format_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/cereplay/cereplay/format"
)

// Write a trace of two records, read it back and verify it.
func Example() {
	dir, err := os.MkdirTemp("", "example-trace-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	trace := filepath.Join(dir, "trace")

	w, err := format.Create(trace, format.WriterOptions{
		Provenance: format.Provenance{Tool: "example", Seed: 1},
	})
	if err != nil {
		log.Fatal(err)
	}
	records := []format.Record{
		{Type: format.TypeEvent, Offset: 0, Flow: format.FlowAgentSubscribe, Actor: "cluster-1",
			Data: []byte("subscription request bytes")},
		{Type: format.TypeEvent, Offset: 50 * time.Millisecond, Flow: format.FlowSourceToServer, Actor: "source-1",
			ResourceID: "work-1", EventType: "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request",
			Data: []byte("cloudevent bytes")},
	}
	for i := range records {
		if err := w.Write(&records[i]); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	m := w.Manifest()
	fmt.Println(m.Records, "records,", len(m.Segments), "segment, consumers", m.Consumers, "sources", m.Sources)

	r, err := format.Open(trace)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rec.Offset, rec.Flow, rec.Actor, string(rec.Data))
	}
	fmt.Println("verify:", format.Verify(trace))
	// Output:
	// 2 records, 1 segment, consumers [cluster-1] sources [source-1]
	// 0s agent-subscribe cluster-1 subscription request bytes
	// 50ms source>server source-1 cloudevent bytes
	// verify: <nil>
}

// Damage names the file and the byte offset; errors.Is tells the kind.
func ExampleCorruptionError() {
	dir, err := os.MkdirTemp("", "example-trace-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w, err := format.Create(dir, format.WriterOptions{})
	if err != nil {
		log.Fatal(err)
	}
	w.Write(&format.Record{Type: format.TypeEvent, Flow: format.FlowAgentSubscribe, Actor: "cluster-1"})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	seg := filepath.Join(dir, format.SegmentName(1))
	b, _ := os.ReadFile(seg)
	os.WriteFile(seg, b[:len(b)-4], 0o644) // cut the end off

	err = format.Verify(dir)
	var ce *format.CorruptionError
	if errors.As(err, &ce) {
		fmt.Println(filepath.Base(ce.File), "offset", ce.Offset, "truncated:", errors.Is(err, format.ErrTruncated))
	}
	// Output:
	// 00000001.seg.zst offset 36 truncated: true
}
