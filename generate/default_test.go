package generate

import (
	"context"
	"testing"
	"time"

	sourcecodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// TestDefaultTraceShape builds every record of the default trace (without
// compressing it) and checks the counts the scale test needs, the wire
// sizes, the offsets' order and the rate.
func TestDefaultTraceShape(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds all 303,001 records of the default trace; skipped with -short and -race")
	}
	p := DefaultParams()
	g, err := newGenerator(p)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[format.Flow]int64{}
	var last, firstSpec, lastSpec time.Duration
	var specMin, specMax, statusMin, statusMax int
	first := true
	err = g.run(context.Background(), func(r *format.Record) error {
		if r.Offset < last {
			t.Fatalf("record %d: offset %v before %v", g.index, r.Offset, last)
		}
		last = r.Offset
		counts[r.Flow]++
		n := len(r.Data)
		if g.index%997 == 0 && (r.Flow == format.FlowSourceToServer || r.Flow == format.FlowAgentToServer) {
			checkDecodes(t, r)
		}
		switch r.Flow {
		case format.FlowSourceToServer:
			if first {
				firstSpec, specMin, specMax, first = r.Offset, n, n, false
			}
			lastSpec = r.Offset
			specMin, specMax = min(specMin, n), max(specMax, n)
		case format.FlowAgentToServer:
			if statusMin == 0 {
				statusMin = n
			}
			statusMin, statusMax = min(statusMin, n), max(statusMax, n)
		}
		return nil
	}, func(int64, int64) {})
	if err != nil {
		t.Fatal(err)
	}
	want := map[format.Flow]int64{
		format.FlowSourceSubscribe: 1, format.FlowAgentSubscribe: 3000,
		format.FlowSourceToServer: 150_000, format.FlowAgentToServer: 150_000,
	}
	for f, n := range want {
		if counts[f] != n {
			t.Errorf("%v: %d records, want %d", f, counts[f], n)
		}
	}
	// ±10 % of the scale test's 4.6 KB spec and 8 KB status on the wire.
	if specMin < 4140 || specMax > 5060 || statusMin < 7200 || statusMax > 8800 {
		t.Errorf("spec %d..%d bytes (want 4140..5060), status %d..%d (want 7200..8800)", specMin, specMax, statusMin, statusMax)
	}
	if rate := float64(150_000-1) / (lastSpec - firstSpec).Seconds(); rate < 19.99 || rate > 20.01 {
		t.Errorf("creates at %.3f per second, want 20", rate)
	}
	t.Logf("spec %d..%d bytes, status %d..%d bytes, creates span %v", specMin, specMax, statusMin, statusMax, lastSpec-firstSpec)
}

// TestSubscribeRamp checks the agents' ramp: a batch, a pause, a batch.
func TestSubscribeRamp(t *testing.T) {
	p := tinyParams() // batches of 4, 1s pause, 10ms gap
	g, err := newGenerator(p)
	if err != nil {
		t.Fatal(err)
	}
	var subs []time.Duration
	var firstCreate time.Duration = -1
	err = g.run(context.Background(), func(r *format.Record) error {
		switch {
		case r.Flow == format.FlowAgentSubscribe:
			subs = append(subs, r.Offset)
		case r.Flow == format.FlowSourceToServer && firstCreate < 0:
			firstCreate = r.Offset
			if r.EventType != maestro.TypeSpecCreate {
				t.Errorf("first create has type %s", r.EventType)
			}
		}
		return nil
	}, func(int64, int64) {})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []time.Duration{0, 10 * ms, 20 * ms, 30 * ms, 1040 * ms, 1050 * ms, 1060 * ms, 1070 * ms, 2080 * ms, 2090 * ms}
	if len(subs) != len(want) {
		t.Fatalf("%d subscribes, want %d", len(subs), len(want))
	}
	for i := range want {
		if subs[i] != want[i] {
			t.Fatalf("subscribe offsets %v, want %v", subs, want)
		}
	}
	if firstCreate != subs[len(subs)-1]+p.CreateAfter {
		t.Fatalf("first create at %v, want the last subscribe + %v", firstCreate, p.CreateAfter)
	}
}

// checkDecodes decodes an event with the SDK's codecs: a spec as the agent
// does, a status as the source does, and checks the status hash.
func checkDecodes(t *testing.T, r *format.Record) {
	t.Helper()
	pb, err := maestro.Unmarshal(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Flow == format.FlowSourceToServer {
		work, err := maestro.AgentWork(pb)
		if err != nil || len(work.Spec.Workload.Manifests) != 7 || string(work.UID) != r.ResourceID {
			t.Fatalf("spec %s: agent codec gives %v manifests, uid %v: %v", r.ResourceID, len(work.Spec.Workload.Manifests), work.UID, err)
		}
		return
	}
	evt, err := maestro.ToCloudEvent(pb)
	if err != nil {
		t.Fatal(err)
	}
	work, err := sourcecodec.NewManifestBundleCodec().Decode(evt)
	if err != nil {
		t.Fatalf("status %s: source codec: %v", r.ResourceID, err)
	}
	hash, err := maestro.StatusHash(work.Status)
	if err != nil || hash != maestro.StringAttr(pb, maestro.AttrStatusHash) {
		t.Fatalf("status %s: statushash %s, SDK computes %s (%v)", r.ResourceID, maestro.StringAttr(pb, maestro.AttrStatusHash), hash, err)
	}
}
