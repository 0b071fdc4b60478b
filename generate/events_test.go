package generate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"google.golang.org/protobuf/proto"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/statushash"
	agentcodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/agent/codec"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"
	sourcecodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protocol"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"

	"github.com/cereplay/cereplay/internal/fixtures"
	"github.com/cereplay/cereplay/maestro"
)

// The reference path: the SDK's own codecs and protobuf writer, then a
// deterministic marshal. The encoder's fast path must give the same bytes.

func refSpec(t testing.TB, w *Workload, sourceID, cluster, name, id string, at time.Time) []byte {
	t.Helper()
	work, err := w.SpecWork(sourceID, cluster, name)
	if err != nil {
		t.Fatal(err)
	}
	evt, err := sourcecodec.NewManifestBundleCodec().Encode(sourceID, types.CloudEventsType{
		CloudEventsDataType: payload.ManifestBundleEventDataType,
		SubResource:         types.SubResourceSpec,
		Action:              types.CreateRequestAction,
	}, work)
	if err != nil {
		t.Fatal(err)
	}
	evt.SetID(id)
	evt.SetTime(at)
	return refMarshal(t, binding.ToMessage(evt))
}

type refStatusInput struct {
	shape      StatusShape
	phase      Phase
	times      StatusTimes
	generation int64
	cluster    string
	resourceID string
	created    time.Time
	id         string
	at         time.Time
	seq        string
}

func refStatus(t testing.TB, w *Workload, in refStatusInput) []byte {
	t.Helper()
	st, err := w.Status(in.shape, in.phase, in.times, in.generation)
	if err != nil {
		t.Fatal(err)
	}
	work := w.StatusWork(in.cluster, in.resourceID, in.generation, in.created, st)
	evt, err := agentcodec.NewManifestBundleCodec().Encode(maestro.AgentID(in.cluster), types.CloudEventsType{
		CloudEventsDataType: payload.ManifestBundleEventDataType,
		SubResource:         types.SubResourceStatus,
		Action:              types.UpdateRequestAction,
	}, work)
	if err != nil {
		t.Fatal(err)
	}
	evt.SetID(in.id)
	evt.SetTime(in.at)
	evt.SetExtension(types.ExtensionStatusUpdateSequenceID, in.seq)
	return refMarshal(t, binding.ToMessage(evt))
}

func refMarshal(t testing.TB, m binding.Message) []byte {
	t.Helper()
	pb := &pbv1.CloudEvent{}
	if err := protocol.WritePBMessage(context.Background(), m, pb); err != nil {
		t.Fatal(err)
	}
	b, err := maestro.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fastSpec(t testing.TB, e *encoder, sourceID, cluster, name, id string, at time.Time) []byte {
	t.Helper()
	return e.appendSpec(nil, &specInput{
		cluster: []byte(cluster), workName: []byte(name),
		resourceID: []byte(maestro.ResourceID(sourceID, cluster, name)),
		id:         []byte(id), at: at,
	})
}

func fastStatus(t testing.TB, e *encoder, in refStatusInput) []byte {
	t.Helper()
	b, err := e.appendStatus(nil, &statusInput{
		cluster: []byte(in.cluster), agentID: []byte(maestro.AgentID(in.cluster)),
		resourceID: []byte(in.resourceID), id: []byte(in.id), sequenceID: []byte(in.seq),
		at: in.at, created: in.created, phase: in.phase, times: in.times,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenEvent reads an SDK-made example and re-marshals its CloudEvent
// deterministically (the examples were written with random map order).
func goldenEvent(t testing.TB, name string) ([]byte, *pbv1.CloudEvent) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures.Examples(t), name))
	if err != nil {
		t.Fatal(err)
	}
	req := &pbv1.PublishRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := maestro.Marshal(req.Event)
	if err != nil {
		t.Fatal(err)
	}
	return b, req.Event
}

func diffAt(a, b []byte) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			lo := max(0, i-40)
			return fmt.Sprintf("first difference at byte %d of %d/%d:\n got ...%q\nwant ...%q", i, len(a), len(b), a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d", len(a), len(b))
}

func TestSpecMatchesGoldenWireBytes(t *testing.T) {
	want, pb := goldenEvent(t, "01-source-spec-create_request.pb.bin")
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEncoder(w, "maestro", StatusRealistic, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime()
	got := fastSpec(t, e, "maestro", "maestro-cluster-1", "maestro-cluster-1-gb-0", pb.Id, at)
	if !bytes.Equal(got, want) {
		t.Fatalf("fast spec differs from the golden example: %s", diffAt(got, want))
	}
	ref := refSpec(t, w, "maestro", "maestro-cluster-1", "maestro-cluster-1-gb-0", pb.Id, at)
	if !bytes.Equal(ref, want) {
		t.Fatalf("SDK reference spec differs from the golden example: %s", diffAt(ref, want))
	}
}

func TestStatusMatchesGoldenWireBytes(t *testing.T) {
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	const rid = "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"
	tests := []struct {
		file  string
		shape StatusShape
		phase Phase
		times StatusTimes
	}{
		{"03rb-agent-status-update_request-realistic-available.pb.bin", StatusRealistic, PhaseAvailable, StatusTimes{goldenT0, goldenT0, goldenT0.Add(4 * time.Second)}},
		{"03ra-agent-status-update_request-realistic-applied.pb.bin", StatusRealistic, PhaseApplied, StatusTimes{goldenT0, goldenT0, goldenT0}},
		{"03-agent-status-update_request.pb.bin", StatusScaleTest, PhaseAvailable, StatusTimes{goldenT0, goldenT0, goldenT0}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			want, pb := goldenEvent(t, tc.file)
			e, err := newEncoder(w, "maestro", tc.shape, 1)
			if err != nil {
				t.Fatal(err)
			}
			in := refStatusInput{
				shape: tc.shape, phase: tc.phase, times: tc.times, generation: 1,
				cluster: "maestro-cluster-1", resourceID: rid, created: goldenT0,
				id: pb.Id, at: pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime(),
				seq: maestro.StringAttr(pb, maestro.AttrSequenceID),
			}
			if got := fastStatus(t, e, in); !bytes.Equal(got, want) {
				t.Fatalf("fast status differs from the golden example: %s", diffAt(got, want))
			}
			if ref := refStatus(t, w, in); !bytes.Equal(ref, want) {
				t.Fatalf("SDK reference status differs from the golden example: %s", diffAt(ref, want))
			}
		})
	}
}

// TestFastPathEqualsFullMarshal compares the templated encoder with the
// SDK codecs' full marshal over random names, ids and times.
func TestFastPathEqualsFullMarshal(t *testing.T) {
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range []StatusShape{StatusRealistic, StatusScaleTest} {
		for _, gen := range []int32{0, 1, 127, 128, 1 << 20} {
			sourceID := fmt.Sprintf("src-%d", rng.IntN(1000))
			e, err := newEncoder(w, sourceID, shape, gen)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				cluster := fmt.Sprintf("c%s-%d", string(rune('a'+rng.IntN(26))), rng.IntN(100000))
				name := fmt.Sprintf("%s-gb-%d", cluster, rng.IntN(500))
				at := time.Unix(rng.Int64N(1<<33), int64(rng.IntN(3))*rng.Int64N(1e9)).UTC()
				id := randomUUID(rng)
				if got, want := fastSpec(t, e, sourceID, cluster, name, id, at), refSpec(t, w, sourceID, cluster, name, id, at); !bytes.Equal(got, want) {
					t.Fatalf("spec %s/%s at %v: %s", cluster, name, at, diffAt(got, want))
				}
				phase := PhaseAvailable
				if shape == StatusRealistic && rng.IntN(2) == 0 {
					phase = PhaseApplied
				}
				applied := at.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
				in := refStatusInput{
					shape: shape, phase: phase, generation: int64(gen),
					times:   StatusTimes{applied, applied.Add(time.Duration(rng.Int64N(int64(time.Minute)))), applied.Add(time.Duration(rng.Int64N(int64(time.Minute))))},
					cluster: cluster, resourceID: maestro.ResourceID(sourceID, cluster, name),
					created: at, id: randomUUID(rng), at: applied, seq: fmt.Sprint(rng.Int64()),
				}
				if got, want := fastStatus(t, e, in), refStatus(t, w, in); !bytes.Equal(got, want) {
					t.Fatalf("status %s/%s %+v: %s", cluster, name, in.times, diffAt(got, want))
				}
			}
		}
	}
}

// TestStatusHashEqualsSDK checks the templated statushash against the
// SDK's statushash.StatusHash for several contents, and that the cache
// gives the same answer as a fresh render.
func TestStatusHashEqualsSDK(t *testing.T) {
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range []StatusShape{StatusRealistic, StatusScaleTest} {
		e, err := newEncoder(w, "maestro", shape, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			tm := StatusTimes{goldenT0.Add(time.Duration(i) * time.Second), goldenT0.Add(time.Duration(2*i) * time.Second), goldenT0.Add(time.Duration(3*i) * time.Second)}
			for pass := 0; pass < 2; pass++ { // second pass hits the cache
				got, err := e.status(PhaseAvailable, tm, time.Time{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				st, err := w.Status(shape, PhaseAvailable, tm, 1)
				if err != nil {
					t.Fatal(err)
				}
				want, err := statushash.StatusHash(w.StatusWork("maestro-cluster-1", "x", 1, goldenT0, st))
				if err != nil {
					t.Fatal(err)
				}
				if string(got.hash) != want {
					t.Fatalf("%s %+v: statushash %s, SDK says %s", shape, tm, got.hash, want)
				}
			}
		}
	}
}

func randomUUID(rng *rand.Rand) string {
	var u [16]byte
	for i := range u {
		u[i] = byte(rng.Uint32())
	}
	return string(appendUUID(nil, u))
}
