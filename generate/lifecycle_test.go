package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// The lifecycle events against the SDK-encoded golden messages: the
// update a source client's Patch publishes, its Delete, and the agent's
// last status after it deleted the manifests.

const goldenRID = "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"

// guestbookEncoder is the realistic guestbook encoder of generation 1.
func guestbookEncoder(t *testing.T) *encoder {
	t.Helper()
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEncoder(w, "maestro", StatusRealistic, 1)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSpecUpdateMatchesGoldenWireBytes(t *testing.T) {
	want, pb := goldenEvent(t, "08-source-spec-update_request.pb.bin")
	// The golden update changes nothing: the encoder of generation 1
	// holds the create's data.
	e := guestbookEncoder(t)
	got := e.appendSpec(nil, &specInput{
		cluster: []byte("maestro-cluster-1"), workName: []byte("maestro-cluster-1-gb-0"), resourceID: []byte(goldenRID),
		id: []byte(pb.Id), at: pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime(), update: true,
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("update differs from the golden example: %s", diffAt(got, want))
	}
}

func TestSpecDeleteMatchesGoldenWireBytes(t *testing.T) {
	want, pb := goldenEvent(t, "09-source-spec-delete_request.pb.bin")
	e := guestbookEncoder(t)
	got := e.appendDelete(nil, &specInput{
		cluster: []byte("maestro-cluster-1"), workName: []byte("maestro-cluster-1-gb-0"), resourceID: []byte(goldenRID),
		id: []byte(pb.Id), at: pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime(),
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("delete differs from the golden example: %s", diffAt(got, want))
	}
}

func TestDeletedStatusMatchesGoldenWireBytes(t *testing.T) {
	want, pb := goldenEvent(t, "11-agent-status-deleted.pb.bin")
	e := guestbookEncoder(t)
	at := pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime()
	in := &statusInput{
		cluster: []byte("maestro-cluster-1"), agentID: []byte(maestro.AgentID("maestro-cluster-1")), resourceID: []byte(goldenRID),
		id: []byte(pb.Id), sequenceID: []byte(maestro.StringAttr(pb, maestro.AttrSequenceID)),
		at: at, created: goldenT0, phase: PhaseDeleted,
		times: StatusTimes{goldenT0, goldenT0, goldenT0.Add(4 * time.Second)}, deleted: at,
	}
	got, err := e.appendStatus(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("deleted status differs from the golden example: %s", diffAt(got, want))
	}

	// A Deleted status names its cluster, so every one is rendered: it is
	// filled where it goes, and with room there it allocates nothing. A
	// status rendered in between (its values are the encoder's scratch)
	// changes nothing.
	if _, err := e.appendStatus(nil, &statusInput{
		cluster: []byte("maestro-cluster-2"), agentID: []byte("agent-2"), resourceID: []byte(goldenRID), id: []byte(pb.Id),
		at: at.Add(time.Hour), created: goldenT0, phase: PhaseAvailable,
		times: StatusTimes{goldenT0, at.Add(time.Hour), at.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(want))
	allocs := testing.AllocsPerRun(10, func() {
		if buf, err = e.appendStatus(buf[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(buf, want) {
		t.Fatalf("deleted status, again, differs from the golden example: %s", diffAt(buf, want))
	}
	if allocs != 0 {
		t.Errorf("a Deleted status allocated %v times, want 0", allocs)
	}
}

// TestLifecycleTrace checks a trace with two updates and a delete per
// work: the counts, each work's events in order (each spec after the
// statuses of the one before), the generations the statuses report, the
// changed field of every update and the Deleted acknowledgement.
func TestLifecycleTrace(t *testing.T) {
	t.Parallel()
	p := tinyParams()
	p.UpdatesPerWork, p.Delete, p.StatusUpdates = 2, true, 2
	dir := t.TempDir()
	m, err := Generate(context.Background(), dir, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	works := p.Works()
	if m.Records != p.Records() || m.Records != 1+int64(p.Clusters)+works*(3+2*2+2) {
		t.Fatalf("%d records, Records() says %d", m.Records, p.Records())
	}
	_, recs := readAll(t, dir)
	type step struct {
		typ        string
		generation int64
	}
	byWork := map[string][]step{}
	for _, r := range recs {
		if r.Flow != format.FlowSourceToServer && r.Flow != format.FlowAgentToServer {
			continue
		}
		pb, err := maestro.Unmarshal(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		k, err := maestro.ExtractKeys(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		st := step{typ: maestro.ShortType(r.EventType)}
		if r.Flow == format.FlowAgentToServer {
			checkDecodes(t, r)
			st.generation = k.ResourceVersion
			if strings.Contains(string(pb.GetBinaryData()), `"type":"Deleted"`) {
				st.typ = "deleted"
			}
		} else if r.EventType == maestro.TypeSpecUpdate {
			n := strings.Count(string(pb.GetBinaryData()), `"`+UpdateAnnotation+`":"`)
			if n != 1 {
				t.Fatalf("update of %s carries the update annotation %d times", r.ResourceID, n)
			}
		}
		byWork[r.ResourceID] = append(byWork[r.ResourceID], st)
	}
	want := []step{
		{"spec.create_request", 0}, {"status.update_request", 1}, {"status.update_request", 1},
		{"spec.update_request", 0}, {"status.update_request", 2},
		{"spec.update_request", 0}, {"status.update_request", 3},
		{"spec.delete_request", 0}, {"deleted", 3},
	}
	if len(byWork) != int(works) {
		t.Fatalf("%d works, want %d", len(byWork), works)
	}
	for rid, got := range byWork {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("work %s: events %v, want %v", rid, got, want)
		}
	}
	if !strings.Contains(m.Provenance.Command, "--delete --level") || m.Provenance.Params["updates-per-work"] != "2" {
		t.Errorf("provenance: %q %v", m.Provenance.Command, m.Provenance.Params)
	}
	back, err := ParamsFromMap(m.Provenance.Params)
	if err != nil || back.UpdatesPerWork != 2 || !back.Delete {
		t.Fatalf("params from the manifest: %+v, %v", back, err)
	}
}

// TestChurnTrace checks the churn phase: its rate and span, and that every
// work's events form a life (created once, each update one generation up,
// nothing after its delete, every spec's statuses before its next spec).
func TestChurnTrace(t *testing.T) {
	t.Parallel()
	p := tinyParams()
	p.Churn, p.ChurnFor = 50, 10*time.Second
	dir := t.TempDir()
	m, err := Generate(context.Background(), dir, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Records > p.Records() {
		t.Errorf("%d records, more than the bound %d", m.Records, p.Records())
	}
	_, recs := readAll(t, dir)
	type life struct {
		generation int64
		open       int // statuses of its last spec not yet seen
		deleted    bool
	}
	lives := map[string]*life{}
	kinds := map[string]int{}
	var firstChurn, lastSpec time.Duration
	specs := 0
	for _, r := range recs {
		switch r.Flow {
		case format.FlowSourceToServer:
			specs++
			if specs == int(p.Works())+1 {
				firstChurn = r.Offset
			}
			lastSpec = r.Offset
			l := lives[r.ResourceID]
			if specs > int(p.Works()) {
				kinds[r.EventType]++
			}
			switch {
			case r.EventType == maestro.TypeSpecCreate:
				if l != nil {
					t.Fatalf("%s created twice (at %v)", r.ResourceID, r.Offset)
				}
				lives[r.ResourceID] = &life{generation: 1, open: p.StatusUpdates}
			case l == nil || l.deleted || l.open != 0:
				t.Fatalf("%s of %s at %v: the work is %+v", maestro.ShortType(r.EventType), r.ResourceID, r.Offset, l)
			case r.EventType == maestro.TypeSpecUpdate:
				l.generation++
				l.open = 1
			default:
				l.deleted, l.open = true, 1
			}
		case format.FlowAgentToServer:
			checkDecodes(t, r)
			l := lives[r.ResourceID]
			k, _ := maestro.ExtractKeys(r.Data)
			if l == nil || l.open == 0 || k.ResourceVersion != l.generation {
				t.Fatalf("status of %s (version %d): the work is %+v", r.ResourceID, k.ResourceVersion, l)
			}
			l.open--
		}
	}
	churn := specs - int(p.Works())
	if churn != 500 {
		t.Errorf("%d churn events, want 50/s for 10s", churn)
	}
	if got := lastSpec - firstChurn; got != 499*20*time.Millisecond {
		t.Errorf("churn spans %v", got)
	}
	for _, typ := range []string{maestro.TypeSpecCreate, maestro.TypeSpecUpdate, maestro.TypeSpecDelete} {
		if kinds[typ] < 100 {
			t.Errorf("the churn drew %v", kinds)
		}
	}
}

// TestResyncReconnectsTrace checks the fleet restart: every agent
// subscribes again 5 to 10 s after the last status and sends its spec
// resync request 1 ms later, listing each of its works at the version the
// updates left it.
func TestResyncReconnectsTrace(t *testing.T) {
	t.Parallel()
	p := tinyParams()
	p.UpdatesPerWork, p.ResyncReconnects = 1, true
	dir := t.TempDir()
	m, err := Generate(context.Background(), dir, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Records != p.Records() {
		t.Fatalf("%d records, Records() says %d", m.Records, p.Records())
	}
	_, recs := readAll(t, dir)
	var lastStatus time.Duration
	subscribed := map[string]time.Duration{}
	resyncs := 0
	for _, r := range recs {
		switch {
		case r.Flow == format.FlowAgentToServer && r.EventType == maestro.TypeStatusUpdate:
			lastStatus = r.Offset
		case r.Flow == format.FlowAgentSubscribe && lastStatus > 0:
			if d := r.Offset - lastStatus; d < reconnectMin || d > reconnectMax+time.Second {
				t.Errorf("%s re-subscribes %v after the last status", r.Actor, d)
			}
			subscribed[r.Actor] = r.Offset
		case r.EventType == maestro.TypeSpecResyncRequest:
			resyncs++
			if r.Offset != subscribed[r.Actor]+resyncAfter {
				t.Errorf("%s: resync at %v, subscribed at %v", r.Actor, r.Offset, subscribed[r.Actor])
			}
			pb, err := maestro.Unmarshal(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Versions []maestro.ResourceVersion `json:"resourceVersions"`
			}
			if err := json.Unmarshal(pb.GetBinaryData(), &list); err != nil || len(list.Versions) != p.WorksPerCluster {
				t.Fatalf("%s: resync lists %+v (%v)", r.Actor, list.Versions, err)
			}
			for _, v := range list.Versions {
				if v.ResourceVersion != 2 {
					t.Errorf("%s: %s at version %d, want 2", r.Actor, v.ResourceID, v.ResourceVersion)
				}
			}
		}
	}
	if resyncs != p.Clusters || len(subscribed) != p.Clusters {
		t.Errorf("%d resyncs, %d re-subscribes, want %d", resyncs, len(subscribed), p.Clusters)
	}
}
