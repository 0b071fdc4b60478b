package maestro

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// goldenOptions returns the id and time of a golden event, so a rebuilt
// event can be compared field by field.
func goldenOptions(t *testing.T, ce *pbv1.CloudEvent) EventOptions {
	t.Helper()
	ts := ce.GetAttributes()[AttrTime].GetCeTimestamp()
	if ts == nil {
		t.Fatalf("golden %s has no ce-time", ce.GetId())
	}
	return EventOptions{ID: ce.GetId(), Time: ts.AsTime()}
}

// compareEvents reports every field and attribute where got differs from
// want; keys listed in ignore are not compared.
func compareEvents(t *testing.T, got, want *pbv1.CloudEvent, ignore ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, k := range ignore {
		skip[k] = true
	}
	for _, f := range []struct{ name, got, want string }{
		{"id", got.GetId(), want.GetId()},
		{"source", got.GetSource(), want.GetSource()},
		{"spec_version", got.GetSpecVersion(), want.GetSpecVersion()},
		{"type", got.GetType(), want.GetType()},
	} {
		if !skip[f.name] && f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	keys := map[string]bool{}
	for k := range got.GetAttributes() {
		keys[k] = true
	}
	for k := range want.GetAttributes() {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if skip[k] {
			continue
		}
		g, w := got.GetAttributes()[k], want.GetAttributes()[k]
		if !proto.Equal(g, w) {
			t.Errorf("attribute %s = %v, want %v", k, g, w)
		}
	}
	if !bytes.Equal(got.GetBinaryData(), want.GetBinaryData()) {
		t.Errorf("data differs (%d vs %d bytes):\n got %.300s\nwant %.300s", len(got.GetBinaryData()), len(want.GetBinaryData()),
			got.GetBinaryData(), want.GetBinaryData())
	}
	if got.GetTextData() != "" || got.GetProtoData() != nil {
		t.Error("event carries text or proto data")
	}
}

// sourceWork rebuilds the ManifestWork a source had when it sent golden 01:
// name, namespace and labels from its metadata, spec from its data. The
// uid and resourceVersion are left for the builder to derive.
func sourceWork(t *testing.T) *workv1.ManifestWork {
	t.Helper()
	g := loadGolden(t, "01-source-spec-create_request")
	var meta metav1.ObjectMeta
	if err := json.Unmarshal([]byte(StringAttr(g.decoded, AttrMetadata)), &meta); err != nil {
		t.Fatal(err)
	}
	var bundle payload.ManifestBundle
	if err := json.Unmarshal(g.decoded.GetBinaryData(), &bundle); err != nil {
		t.Fatal(err)
	}
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: meta.Name, Namespace: meta.Namespace, Labels: meta.Labels},
		Spec: workv1.ManifestWorkSpec{
			Workload:        workv1.ManifestsTemplate{Manifests: bundle.Manifests},
			DeleteOption:    bundle.DeleteOption,
			ManifestConfigs: bundle.ManifestConfigs,
			Executor:        bundle.Executer,
		},
	}
}

func TestNewSpecEventGolden(t *testing.T) {
	work := sourceWork(t)
	if work.Name != "maestro-cluster-1-gb-0" || work.Namespace != goldenCluster || len(work.Spec.Workload.Manifests) != 7 {
		t.Fatalf("unexpected golden work %s/%s with %d manifests", work.Namespace, work.Name, len(work.Spec.Workload.Manifests))
	}
	for _, tc := range []struct {
		golden, eventType string
	}{
		{"01-source-spec-create_request", TypeSpecCreate},
		{"08-source-spec-update_request", TypeSpecUpdate},
		{"09-source-spec-delete_request", TypeSpecDelete},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want := loadGolden(t, tc.golden).decoded
			got, err := NewSpecEvent(tc.eventType, "maestro", work, goldenOptions(t, want))
			if err != nil {
				t.Fatal(err)
			}
			compareEvents(t, got, want)
		})
	}
	if work.UID != "" || work.DeletionTimestamp != nil {
		t.Error("NewSpecEvent modified its input work")
	}
}

func TestNewSpecEventDefaults(t *testing.T) {
	before := time.Now()
	ce, err := NewSpecEvent(TypeSpecCreate, "src", sourceWork(t), EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evt, err := ToCloudEvent(ce)
	if err != nil {
		t.Fatal(err)
	}
	if evt.Time().Before(before) || len(evt.ID()) != 36 {
		t.Errorf("default id %q time %v", evt.ID(), evt.Time())
	}
	if got := StringAttr(ce, AttrResourceID); got != ResourceID("src", goldenCluster, "maestro-cluster-1-gb-0") {
		t.Errorf("resource id %s", got)
	}
}

func TestNewSpecEventErrors(t *testing.T) {
	w := sourceWork(t)
	if _, err := NewSpecEvent(TypeStatusUpdate, "maestro", w, EventOptions{}); !errors.Is(err, ErrEventType) {
		t.Errorf("status type: err = %v", err)
	}
	noNS := w.DeepCopy()
	noNS.Namespace = ""
	if _, err := NewSpecEvent(TypeSpecCreate, "maestro", noNS, EventOptions{}); !errors.Is(err, ErrWork) {
		t.Errorf("no namespace: err = %v", err)
	}
	empty := w.DeepCopy()
	empty.Spec.Workload.Manifests = nil
	if _, err := NewSpecEvent(TypeSpecCreate, "maestro", empty, EventOptions{}); !errors.Is(err, ErrWork) {
		t.Errorf("no manifests: err = %v", err)
	}
	badRV := w.DeepCopy()
	badRV.Annotations = map[string]string{"cloudevents.open-cluster-management.io/resourceversion": "x"}
	if _, err := NewSpecEvent(TypeSpecUpdate, "maestro", badRV, EventOptions{}); !errors.Is(err, ErrWork) {
		t.Errorf("bad resourceversion annotation: err = %v", err)
	}
	if _, err := NewSpecEvent(TypeSpecCreate, "maestro", nil, EventOptions{}); !errors.Is(err, ErrWork) {
		t.Errorf("nil work: err = %v", err)
	}
}

// agentWorkWithStatus rebuilds the work an agent held when it sent a golden
// status: the agent's view of the spec event it received, plus the status
// carried by the golden event's data.
func agentWorkWithStatus(t *testing.T, specGolden string, status *pbv1.CloudEvent) *workv1.ManifestWork {
	t.Helper()
	w, err := AgentWork(loadGolden(t, specGolden).decoded)
	if err != nil {
		t.Fatal(err)
	}
	var st payload.ManifestBundleStatus
	if err := json.Unmarshal(status.GetBinaryData(), &st); err != nil {
		t.Fatal(err)
	}
	w.Status.Conditions = st.Conditions
	w.Status.ResourceStatus.Manifests = st.ResourceStatus
	return w
}

func TestNewStatusEventGolden(t *testing.T) {
	for _, tc := range []struct {
		golden, spec string
		finalizers   []string
	}{
		{"03-agent-status-update_request", "02-broker-to-agent-spec-create_request", []string{workv1.ManifestWorkFinalizer}},
		{"03ra-agent-status-update_request-realistic-applied", "02-broker-to-agent-spec-create_request", []string{workv1.ManifestWorkFinalizer}},
		{"03rb-agent-status-update_request-realistic-available", "02-broker-to-agent-spec-create_request", []string{workv1.ManifestWorkFinalizer}},
		// After the manifests are gone the agent has removed its finalizer.
		{"11-agent-status-deleted", "10-broker-to-agent-spec-delete_request", nil},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			want := loadGolden(t, tc.golden).decoded
			w := agentWorkWithStatus(t, tc.spec, want)
			w.Finalizers = tc.finalizers
			got, err := NewStatusEvent(goldenCluster, w, StringAttr(want, AttrSequenceID), goldenOptions(t, want))
			if err != nil {
				t.Fatal(err)
			}
			compareEvents(t, got, want)

			hash, err := StatusHash(w.Status)
			if err != nil {
				t.Fatal(err)
			}
			if wantHash := StringAttr(want, AttrStatusHash); hash != wantHash {
				t.Errorf("StatusHash = %s, want %s", hash, wantHash)
			}
		})
	}
}

func TestNewStatusEventErrors(t *testing.T) {
	w := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if _, err := NewStatusEvent(goldenCluster, w, "1", EventOptions{}); !errors.Is(err, ErrWork) {
		t.Errorf("no uid: err = %v", err)
	}
	w.UID = goldenResourceID
	if _, err := NewStatusEvent(goldenCluster, w, "", EventOptions{}); err == nil {
		t.Error("empty sequence id accepted")
	}
	// Without the originalsource label the builder adds the broker's, as
	// the agent does on receipt.
	ce, err := NewStatusEvent(goldenCluster, w, "7", EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := mustKeys(t, ce)
	if k.OriginalSource != BrokerSource || k.SequenceID != "7" || k.Source != goldenAgent || k.ResourceID != goldenResourceID {
		t.Errorf("keys %+v", k)
	}
}

func TestResyncRequestsGolden(t *testing.T) {
	var versions struct {
		Versions []ResourceVersion `json:"resourceVersions"`
	}
	want05 := loadGolden(t, "05-agent-spec-resync_request-50works").decoded
	if err := json.Unmarshal(want05.GetBinaryData(), &versions); err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 50 {
		t.Fatalf("golden 05 lists %d versions", len(versions.Versions))
	}
	got, err := NewSpecResyncRequest(goldenCluster, versions.Versions, goldenOptions(t, want05))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("05", func(t *testing.T) { compareEvents(t, got, want05) })

	want05b := loadGolden(t, "05b-agent-spec-resync_request-empty").decoded
	if got, err = NewSpecResyncRequest(goldenCluster, nil, goldenOptions(t, want05b)); err != nil {
		t.Fatal(err)
	}
	t.Run("05b", func(t *testing.T) { compareEvents(t, got, want05b) })

	want07 := loadGolden(t, "07-source-status-resync_request").decoded
	if got, err = NewStatusResyncRequest("maestro", nil, goldenOptions(t, want07)); err != nil {
		t.Fatal(err)
	}
	t.Run("07", func(t *testing.T) { compareEvents(t, got, want07) })

	hashes := []ResourceStatusHash{{ResourceID: goldenResourceID, StatusHash: "abc"}}
	if got, err = NewStatusResyncRequest("maestro", hashes, EventOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := `{"statusHashes":[{"resourceID":"` + goldenResourceID + `","statusHash":"abc"}]}`; string(got.GetBinaryData()) != want {
		t.Errorf("data %s", got.GetBinaryData())
	}
}

func mustKeys(t *testing.T, ce *pbv1.CloudEvent) Keys {
	t.Helper()
	b, err := Marshal(ce)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ExtractKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// BenchmarkBuilders measures the cost per guestbook event of the SDK-exact
// builders, which a generator calls once per spec and status record.
func BenchmarkBuilders(b *testing.B) {
	g01 := loadGolden(b, "01-source-spec-create_request")
	var bundle payload.ManifestBundle
	if err := json.Unmarshal(g01.decoded.GetBinaryData(), &bundle); err != nil {
		b.Fatal(err)
	}
	work := &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: "maestro-cluster-1-gb-0", Namespace: goldenCluster},
		Spec:       workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: bundle.Manifests}, ManifestConfigs: bundle.ManifestConfigs},
	}
	opts := EventOptions{ID: g01.decoded.GetId(), Time: time.Date(2024, 12, 20, 8, 30, 0, 0, time.UTC)}
	b.Run("NewSpecEvent/create", func(b *testing.B) {
		b.SetBytes(int64(len(g01.event)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewSpecEvent(TypeSpecCreate, "maestro", work, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	g03 := loadGolden(b, "03-agent-status-update_request")
	agent, err := AgentWork(loadGolden(b, "02-broker-to-agent-spec-create_request").decoded)
	if err != nil {
		b.Fatal(err)
	}
	var st payload.ManifestBundleStatus
	if err := json.Unmarshal(g03.decoded.GetBinaryData(), &st); err != nil {
		b.Fatal(err)
	}
	agent.Status.Conditions, agent.Status.ResourceStatus.Manifests = st.Conditions, st.ResourceStatus
	seqs := NewSequenceIDs()
	b.Run("NewStatusEvent", func(b *testing.B) {
		b.SetBytes(int64(len(g03.event)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := NewStatusEvent(goldenCluster, agent, seqs.Next(), opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
