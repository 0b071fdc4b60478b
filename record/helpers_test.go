package record_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/record"
	"github.com/cereplay/cereplay/sim"
)

// startSim starts the embedded sim on loopback ports.
func startSim(t testing.TB, heartbeat time.Duration) *sim.Server {
	t.Helper()
	c := sim.LoopbackConfig()
	c.HeartbeatInterval = heartbeat
	s, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startRecorder records both ports of s into a new folder.
func startRecorder(t testing.TB, s *sim.Server, mod func(*record.Config)) (*record.Recorder, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rec")
	c := record.Config{
		Out:          out,
		SourceListen: "127.0.0.1:0", SourceUpstream: s.SourceAddr(),
		BrokerListen: "127.0.0.1:0", BrokerUpstream: s.BrokerAddr(),
		SealEvery: 50 * time.Millisecond,
	}
	if mod != nil {
		mod(&c)
	}
	r, err := record.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, out
}

// readTrace verifies the trace at dir and returns its manifest and records.
func readTrace(t testing.TB, dir string) (*format.Manifest, []format.Record) {
	t.Helper()
	if err := format.Verify(dir); err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	rd, err := format.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var recs []format.Record
	for {
		r, err := rd.Next()
		if err == io.EOF {
			return rd.Manifest(), recs
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		recs = append(recs, c)
	}
}

// eventually waits for cond (see testwait.Until).
var eventually = testwait.Until
