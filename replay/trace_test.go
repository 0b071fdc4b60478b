package replay

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// testTrace describes a small trace built with the maestro builders:
// every cluster subscribes at offset 0, the source subscribes, then one
// spec create every Gap; each spec is delivered Deliver later, answered by
// a status Reply after that, forwarded Forward after the status.
type testTrace struct {
	Clusters, Works int
	Gap             time.Duration
	Deliver, Reply  time.Duration
	Forward         time.Duration
	Source          string
	NoSubscribes    bool
	// PlainStatuses leaves every status without its trigger and its
	// forward: the replay plays them as agent events that answer nothing.
	PlainStatuses bool
	// SegmentSize, when set, cuts the trace into small segments, so the
	// replay crosses many (and the reader reuses their buffers).
	SegmentSize int64
}

func (tt testTrace) withDefaults() testTrace {
	if tt.Gap == 0 {
		tt.Gap = 10 * time.Millisecond
	}
	if tt.Deliver == 0 {
		tt.Deliver = 3 * time.Millisecond
	}
	if tt.Reply == 0 {
		tt.Reply = 20 * time.Millisecond
	}
	if tt.Forward == 0 {
		tt.Forward = 4 * time.Millisecond
	}
	if tt.Source == "" {
		tt.Source = "maestro"
	}
	return tt
}

func cluster(i int) string { return fmt.Sprintf("maestro-cluster-%d", i+1) }

// write builds the trace in dir and returns the spec offsets (in spec
// order), for schedule checks.
func (tt testTrace) write(t testing.TB, dir string) []time.Duration {
	t.Helper()
	tt = tt.withDefaults()
	t0 := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	type ev struct {
		rec     format.Record
		key     string // unique name
		trigger string // key of the record it answers
	}
	var evs []ev
	if !tt.NoSubscribes {
		for c := 0; c < tt.Clusters; c++ {
			b, _ := proto.Marshal(maestro.AgentSubscription(cluster(c)))
			evs = append(evs, ev{rec: format.Record{Flow: format.FlowAgentSubscribe, Actor: cluster(c), Data: b}, key: "sub-" + cluster(c)})
		}
		b, _ := proto.Marshal(maestro.SourceSubscription(tt.Source))
		evs = append(evs, ev{rec: format.Record{Flow: format.FlowSourceSubscribe, Actor: tt.Source, Data: b}, key: "sub-source"})
	}
	var specOffsets []time.Duration
	n := 0
	for w := 0; w < tt.Works; w++ {
		for c := 0; c < tt.Clusters; c++ {
			off := time.Duration(n+1) * tt.Gap
			n++
			specOffsets = append(specOffsets, off)
			name := fmt.Sprintf("%s-w-%d", cluster(c), w)
			work := testWork(cluster(c), name)
			spec, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, tt.Source, work,
				maestro.EventOptions{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Time: t0.Add(off)})
			if err != nil {
				t.Fatal(err)
			}
			specBytes, err := maestro.Marshal(spec)
			if err != nil {
				t.Fatal(err)
			}
			rid := maestro.ResourceID(tt.Source, cluster(c), name)
			aw, err := maestro.AgentWork(spec)
			if err != nil {
				t.Fatal(err)
			}
			aw.Generation = 1
			aw.Status = workv1.ManifestWorkStatus{Conditions: []metav1.Condition{{
				Type: "Applied", Status: metav1.ConditionTrue, ObservedGeneration: 1, Reason: "AppliedManifestWorkComplete",
				Message: "Apply manifest work complete", LastTransitionTime: metav1.NewTime(t0.Add(off))}}}
			st, err := maestro.NewStatusEvent(cluster(c), aw, "1", maestro.EventOptions{
				ID: fmt.Sprintf("00000000-0000-4000-9000-%012d", n), Time: t0.Add(off + tt.Deliver + tt.Reply)})
			if err != nil {
				t.Fatal(err)
			}
			stBytes, _ := maestro.Marshal(st)
			k := fmt.Sprintf("w%d", n)
			evs = append(evs,
				ev{rec: format.Record{Offset: off, Flow: format.FlowSourceToServer, Actor: tt.Source, ResourceID: rid,
					EventType: maestro.TypeSpecCreate, Data: specBytes}, key: k + "-spec"},
				ev{rec: format.Record{Offset: off + tt.Deliver, Flow: format.FlowServerToAgent, Actor: cluster(c), ResourceID: rid,
					EventType: maestro.TypeSpecCreate, Delay: tt.Deliver, Data: specBytes}, key: k + "-deliver", trigger: k + "-spec"},
			)
			status := ev{rec: format.Record{Offset: off + tt.Deliver + tt.Reply, Flow: format.FlowAgentToServer, Actor: cluster(c), ResourceID: rid,
				EventType: maestro.TypeStatusUpdate, Delay: tt.Reply, Data: stBytes}, key: k + "-status", trigger: k + "-deliver"}
			if tt.PlainStatuses {
				status.rec.Delay, status.trigger = 0, ""
				evs = append(evs, status)
				continue
			}
			evs = append(evs, status,
				ev{rec: format.Record{Offset: off + tt.Deliver + tt.Reply + tt.Forward, Flow: format.FlowServerToSource, Actor: tt.Source,
					ResourceID: rid, EventType: maestro.TypeStatusUpdate, Delay: tt.Forward, Data: stBytes}, key: k + "-forward", trigger: k + "-status"},
			)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].rec.Offset < evs[j].rec.Offset })
	idx := map[string]uint64{}
	for i, e := range evs {
		idx[e.key] = uint64(i)
	}
	w, err := format.Create(dir, format.WriterOptions{Provenance: format.Provenance{Tool: "replay test"}, SegmentSize: tt.SegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		r := e.rec
		r.Type = format.TypeEvent
		if e.trigger != "" {
			r.HasTrigger, r.Trigger = true, idx[e.trigger]
		}
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return specOffsets
}

// testWork is a minimal ManifestWork: one ConfigMap.
func testWork(cluster, name string) *workv1.ManifestWork {
	cm, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"data":     map[string]string{"k": "v"},
	})
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{
			Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: cm}}}}},
	}
}

// readOutcomes returns the outcome records of a run folder, by trace index.
func readOutcomes(t testing.TB, dir string) map[uint64][]format.Record {
	t.Helper()
	r, err := format.Open(dir + "/" + OutcomesDir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[uint64][]format.Record{}
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		out[rec.Outcome.Index] = append(out[rec.Outcome.Index], *rec)
	}
	return out
}

func TestTestTraceIsValid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testTrace{Clusters: 2, Works: 3}.write(t, dir)
	if err := format.Verify(dir); err != nil {
		t.Fatal(err)
	}
	r, err := format.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := r.Manifest()
	if m.Records != 2+1+2*3*4 || len(m.Consumers) != 2 {
		t.Fatalf("manifest: %d records, consumers %v", m.Records, m.Consumers)
	}
}
