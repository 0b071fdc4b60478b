package format

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// seedTrace writes a small trace of every record shape (events with and
// without trigger, subscribe records, outcomes) without needing the shared
// examples, and returns its folder.
func seedTrace(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "seed")
	w, err := Create(dir, WriterOptions{SegmentSize: 4 << 10, Provenance: Provenance{
		Tool: "cereplay", Version: "test", Command: "format seed trace",
		Params: map[string]string{"records": "40"}, Seed: 7, Upstreams: []string{"127.0.0.1:8090"},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 40 {
		r := Record{
			Type:       TypeEvent,
			Offset:     time.Duration(i) * time.Millisecond,
			Flow:       Flow(i%6 + 1),
			Actor:      fmt.Sprintf("cluster-%d", i%3),
			ResourceID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", i),
			EventType:  "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request",
			Data:       []byte(fmt.Sprintf(`{"metadata":{"name":"work-%d"},"spec":{"workload":{"manifests":[]}}}`, i)),
		}
		if r.Flow.Subscribe() {
			r.EventType = ""
		}
		if i%4 == 1 {
			r.HasTrigger, r.Trigger, r.Delay = true, uint64(i-1), -time.Duration(i)
		}
		if i%5 == 4 {
			r.Type = TypeOutcome
			r.Outcome = Outcome{Index: uint64(i), Status: OutcomeStatus(i%6 + 1), Code: 14, Lateness: -3, Latency: 5, Delivery: 7, Note: "note"}
		}
		if err := w.Write(&r); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// FuzzSegmentFile feeds arbitrary bytes to the segment file decoder (zstd
// plus record framing): it must return records or an error, never panic,
// and the records it returns must survive a re-encoding.
func FuzzSegmentFile(f *testing.F) {
	dir := seedTrace(f)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt))
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(dec.Close)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), SegmentName(1))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, err := readSegment(readerDecoders{checked: dec}, path, nil)
		if err != nil {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("error %v is not a *CorruptionError", err)
			}
			return
		}
		checkReencode(t, recs)
	})
}

// FuzzDecodeSegment feeds arbitrary decompressed streams to the record
// framing decoder.
func FuzzDecodeSegment(f *testing.F) {
	dir := seedTrace(f)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt))
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, s := range segs {
		b, _ := os.ReadFile(s)
		raw, err := dec.DecodeAll(b, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(segmentMagic + "\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		recs, err := decodeSegment("fuzz", raw)
		if err != nil {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("error %v is not a *CorruptionError", err)
			}
			return
		}
		checkReencode(t, recs)
	})
}

// checkReencode: records a decoder accepted encode and decode to equal
// records.
func checkReencode(t *testing.T, recs []Record) {
	t.Helper()
	raw := appendSegmentHeader(nil)
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			t.Fatalf("decoder accepted record %d that Validate refuses: %v", i, err)
		}
		raw = AppendRecord(raw, &recs[i])
	}
	again, err := decodeSegment("again", raw)
	if err != nil {
		t.Fatalf("re-encoded records do not decode: %v", err)
	}
	if len(again) != len(recs) {
		t.Fatalf("%d records re-decoded, want %d", len(again), len(recs))
	}
	for i := range recs {
		if !equalRecords(&recs[i], &again[i]) {
			t.Fatalf("record %d changed in re-encoding", i)
		}
	}
}

// FuzzManifest feeds arbitrary bytes to the manifest parser.
func FuzzManifest(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(seedTrace(f), ManifestName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(bytes.Replace(b, []byte(`"records": 40`), []byte(`"records": 41`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(ManifestName, b)
		if err != nil {
			return
		}
		// An accepted manifest re-encodes to the same digest only when
		// the input was canonical; at least its arithmetic holds.
		if err := m.check(); err != nil {
			t.Fatalf("accepted manifest fails check: %v", err)
		}
	})
}

// FuzzPackedFile feeds arbitrary bytes to the packed-trace reader and
// verifier: they must return errors that say where, never panic, and agree:
// a pack Verify accepts reads back whole.
func FuzzPackedFile(f *testing.F) {
	dir := seedTrace(f)
	var buf bytes.Buffer
	if _, err := Pack(context.Background(), dir, &buf, OpenOptions{}); err != nil {
		f.Fatal(err)
	}
	b := buf.Bytes()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:3*packBlock])
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "fuzz"+PackExt)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, errs := VerifySource(context.Background(), path, OpenOptions{})
		for _, err := range errs {
			if _, ok := err.(*CorruptionError); !ok {
				t.Fatalf("error %v is not a *CorruptionError", err)
			}
		}
		recs, err := readSource(path, OpenOptions{})
		if len(errs) == 0 {
			if err != nil {
				t.Fatalf("verify accepted the pack, reading it fails: %v", err)
			}
			if int64(len(recs)) != m.Records {
				t.Fatalf("verify accepted the pack, %d records read, the manifest says %d", len(recs), m.Records)
			}
		}
	})
}
