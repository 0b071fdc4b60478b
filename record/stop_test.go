package record_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/record"
)

// publishSpecs publishes n spec creates of cluster through the proxy's
// source port and fails the test unless every call succeeds.
func publishSpecs(t *testing.T, c rawClient, cluster string, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := from; i < from+n; i++ {
		ev, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, "stop-source", sdkclient.ConfigMapWork(cluster, "w"+string(rune('a'+i))), maestro.EventOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := maestro.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.publish(ctx, publishRequest(b)); err != nil {
			t.Fatalf("publish %d through the proxy: %v", i, err)
		}
	}
}

// TestDiskErrorStopsRecordingNotProxy: when the trace folder can no longer
// be written, the recording stops with an error and the trace of its last
// checkpoint stays valid, while the proxy goes on forwarding.
func TestDiskErrorStopsRecordingNotProxy(t *testing.T) {
	const cluster = "disk-cluster"
	srv := startSim(t, 0)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	rec, out := startRecorder(t, srv, func(c *record.Config) { c.SealEvery = 20 * time.Millisecond })
	src := dialRaw(t, rec.SourceAddr())
	publishSpecs(t, src, cluster, 0, 3)
	eventually(t, "a checkpoint of the first records", func() bool {
		rd, err := format.Open(out)
		if err != nil {
			return false
		}
		defer rd.Close()
		return rd.Manifest().Records >= 6 // 3 Publish records and their outcomes
	})
	// The folder goes away under the recorder: every later write fails.
	moved := out + ".moved"
	if err := os.Rename(out, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	publishSpecs(t, src, cluster, 3, 3)
	eventually(t, "the recording to stop", func() bool { return rec.Err() != nil })
	publishSpecs(t, src, cluster, 6, 3) // the proxy still forwards
	sum, err := rec.Close()
	if err == nil || sum.Stopped == "" {
		t.Fatalf("close after a disk error: %v, summary says %q", err, sum.Stopped)
	}
	if got := sum.Messages["source>server"]; got != 9 {
		t.Errorf("%d Publish calls proxied, want 9", got)
	}
	m, _ := readTrace(t, moved)
	if m.Records < 6 {
		t.Errorf("the trace holds %d records, want at least the 6 checkpointed", m.Records)
	}
}

// TestSlowWriterStopsRecordingNotProxy: past the queue's byte budget the
// recording stops (the trace holds what was queued) and traffic flows on.
func TestSlowWriterStopsRecordingNotProxy(t *testing.T) {
	const cluster = "queue-cluster"
	srv := startSim(t, 0)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	rec, out := startRecorder(t, srv, func(c *record.Config) { c.QueueBytes = 1 })
	src := dialRaw(t, rec.SourceAddr())
	publishSpecs(t, src, cluster, 0, 3)
	sum, err := rec.Close()
	if err == nil || sum.Messages["source>server"] != 3 {
		t.Fatalf("close: %v; %d Publish calls proxied", err, sum.Messages["source>server"])
	}
	if errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	readTrace(t, out) // a valid trace of what was queued before the stop
}
