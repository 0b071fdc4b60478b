package wire

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// goldenEvents returns the CloudEvent wire bytes of every golden example
// in testdata/protocol/examples (client messages are PublishRequests and
// are unwrapped), keyed by example name.
func goldenEvents(tb testing.TB) map[string][]byte {
	tb.Helper()
	examples := fixtures.Examples(tb)
	files, err := filepath.Glob(filepath.Join(examples, "*.pb.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	events := map[string][]byte{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pb.bin")
		if strings.Contains(name, "subscription-request") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		// Client messages start with PublishRequest.event (field 1, bytes),
		// stream messages with CloudEvent.id (also field 1, bytes): tell
		// them apart by decoding the wrapper and checking its event type.
		req := &pbv1.PublishRequest{}
		if proto.Unmarshal(b, req) == nil && strings.HasPrefix(req.GetEvent().GetType(), "io.open-cluster-management.") {
			if b, err = proto.Marshal(req.GetEvent()); err != nil {
				tb.Fatal(err)
			}
		}
		events[name] = b
	}
	if len(events) < 16 {
		tb.Fatalf("found %d golden events in %s, want at least 16", len(events), examples)
	}
	return events
}

func TestExtractMatchesReferenceOnGolden(t *testing.T) {
	for name, b := range goldenEvents(t) {
		ce := &pbv1.CloudEvent{}
		if err := proto.Unmarshal(b, ce); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, ok := FromDecoded(ce)
		got, err := Extract(b)
		if !ok || err != nil || got != want {
			t.Errorf("%s: got %+v (%v), want %+v", name, got, err, want)
		}
		if got.Type == "" || got.ID == "" {
			t.Errorf("%s: no type or id: %+v", name, got)
		}
		// The cluster name and the resource id, which callers keep, have
		// an allocation each; the other strings share one.
		if n := testing.AllocsPerRun(20, func() { _, _ = Extract(b) }); n > 3 {
			t.Errorf("%s: Extract allocates %v times, want at most 3", name, n)
		}
	}
}

// FuzzExtractKeys cross-checks Extract against proto.Unmarshal: whenever
// protobuf accepts the bytes, Extract must succeed (or fail exactly when
// the reference rules reject the event) with the same keys; it must never
// panic on any input.
func FuzzExtractKeys(f *testing.F) {
	for _, b := range goldenEvents(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x2a, 0x06, 0x0a, 0x00, 0x12, 0x02, 0x10, 0x07})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Extract(b)
		ce := &pbv1.CloudEvent{}
		if perr := proto.Unmarshal(b, ce); perr != nil {
			return // Extract does not validate what it skips; any answer is fine.
		}
		want, ok := FromDecoded(ce)
		if !ok {
			if err == nil {
				t.Fatalf("Extract accepted an event the reference rejects: %+v", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("Extract failed on a valid event: %v", err)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	events := goldenEvents(b)
	for _, name := range []string{"01-source-spec-create_request", "04-server-to-source-status-update_request", "12-heartbeat"} {
		ev := events[name]
		b.Run(name+"/Extract", func(b *testing.B) {
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Extract(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/proto.Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(ev, &pbv1.CloudEvent{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzPublishRequestEvent cross-checks PublishRequestEvent against a full
// proto.Unmarshal of the PublishRequest.
func FuzzPublishRequestEvent(f *testing.F) {
	small := &pbv1.CloudEvent{Id: "x", Type: "t", Attributes: map[string]*pbv1.CloudEventAttributeValue{
		AttrClusterName: {Attr: &pbv1.CloudEventAttributeValue_CeString{CeString: "c1"}}}}
	req, err := proto.Marshal(&pbv1.PublishRequest{Event: small})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req)
	f.Add(append(append([]byte(nil), req...), req...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := PublishRequestEvent(b)
		want := &pbv1.PublishRequest{}
		if proto.Unmarshal(b, want) != nil {
			return
		}
		if want.Event == nil {
			if !errors.Is(err, ErrNoEvent) {
				t.Fatalf("no event: err = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid request: %v", err)
		}
		ev := &pbv1.CloudEvent{}
		if err := proto.Unmarshal(got, ev); err != nil {
			t.Fatalf("returned event does not decode: %v", err)
		}
		if !proto.Equal(ev, want.Event) {
			t.Fatalf("event %v, want %v", ev, want.Event)
		}
	})
}

// A head from AppendPublishHead before an event's bytes makes the
// PublishRequest that protobuf and PublishRequestEvent read back.
func TestAppendPublishHead(t *testing.T) {
	for name, ev := range goldenEvents(t) {
		head := AppendPublishHead(nil, len(ev))
		if len(head) != PublishHeadSize(len(ev)) {
			t.Fatalf("%s: head of %d bytes, PublishHeadSize says %d", name, len(head), PublishHeadSize(len(ev)))
		}
		req := append(head, ev...)
		got, err := PublishRequestEvent(req)
		if err != nil || string(got) != string(ev) {
			t.Fatalf("%s: PublishRequestEvent: %v", name, err)
		}
		want := &pbv1.CloudEvent{}
		if err := proto.Unmarshal(ev, want); err != nil {
			t.Fatal(err)
		}
		dec := &pbv1.PublishRequest{}
		if err := proto.Unmarshal(req, dec); err != nil || !proto.Equal(dec.GetEvent(), want) {
			t.Fatalf("%s: decoded %v, %v", name, dec.GetEvent(), err)
		}
	}
}
