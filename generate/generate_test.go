package generate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	sourcecodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// tinyParams is a 10 × 5 trace that generates in milliseconds.
func tinyParams() Params {
	p := DefaultParams()
	p.Clusters = 10
	p.WorksPerCluster = 5
	p.SubscribeBatch = 4
	p.SubscribePause = time.Second
	p.CreateAfter = time.Second
	return p
}

func readAll(t testing.TB, dir string) (*format.Manifest, []*format.Record) {
	t.Helper()
	r, err := format.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []*format.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return r.Manifest(), recs
}

func TestGenerateTinyTrace(t *testing.T) {
	for _, updates := range []int{1, 2} {
		t.Run(map[int]string{1: "one-status", 2: "two-statuses"}[updates], func(t *testing.T) {
			t.Parallel()
			p := tinyParams()
			p.StatusUpdates = updates
			dir := filepath.Join(t.TempDir(), "trace")
			var calls int
			var lastDone, lastTotal int64
			m, err := Generate(context.Background(), dir, p, func(done, total int64) { calls++; lastDone, lastTotal = done, total })
			if err != nil {
				t.Fatal(err)
			}
			if err := format.Verify(dir); err != nil {
				t.Fatalf("verify: %v", err)
			}
			works := int64(p.Clusters * p.WorksPerCluster)
			if want := 1 + int64(p.Clusters) + works*int64(1+updates); m.Records != want || lastDone != want || lastTotal != want || calls == 0 {
				t.Fatalf("records %d, progress %d/%d after %d calls; want %d", m.Records, lastDone, lastTotal, calls, want)
			}
			wantFlows := map[string]int64{
				"source-subscribe": 1, "agent-subscribe": int64(p.Clusters),
				"source>server": works, "agent>server": works * int64(updates),
			}
			if !reflect.DeepEqual(m.CountsByFlow, wantFlows) {
				t.Fatalf("counts by flow %v, want %v", m.CountsByFlow, wantFlows)
			}
			if m.Provenance.Tool != Tool || m.Provenance.Params["clusters"] != "10" || m.Provenance.Seed != p.Seed {
				t.Fatalf("provenance %+v does not record the parameters", m.Provenance)
			}
			_, recs := readAll(t, dir)
			checkTrace(t, p, recs)
		})
	}
}

// checkTrace checks the structure of a generated trace and decodes every
// message with the SDK's codecs.
func checkTrace(t *testing.T, p Params, recs []*format.Record) {
	t.Helper()
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	wantManifests := w.Manifests
	specs := map[string]int{}       // resource id -> index
	statuses := map[string][]int{}  // resource id -> indexes
	subscribed := map[string]bool{} // cluster -> subscribed
	var lastSeq string
	firstSpec := -1
	for i, rec := range recs {
		if i > 0 && rec.Offset < recs[i-1].Offset {
			t.Fatalf("record %d: offset %v before %v", i, rec.Offset, recs[i-1].Offset)
		}
		switch rec.Flow {
		case format.FlowSourceSubscribe, format.FlowAgentSubscribe:
			if firstSpec >= 0 {
				t.Fatalf("record %d: subscribe after the first create (record %d)", i, firstSpec)
			}
			req := &pbv1.SubscriptionRequest{}
			if err := proto.Unmarshal(rec.Data, req); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			want := maestro.AgentSubscription(rec.Actor)
			if rec.Flow == format.FlowSourceSubscribe {
				want = maestro.SourceSubscription(p.SourceID)
			} else {
				subscribed[rec.Actor] = true
			}
			if !proto.Equal(req, want) {
				t.Fatalf("record %d: subscription %v, want %v", i, req, want)
			}
		case format.FlowSourceToServer:
			if firstSpec < 0 {
				firstSpec = i
			}
			if rec.EventType != maestro.TypeSpecCreate || rec.Actor != p.SourceID {
				t.Fatalf("record %d: spec record type %q actor %q", i, rec.EventType, rec.Actor)
			}
			pb, err := maestro.Unmarshal(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			// What the agent makes of it, with the SDK's agent codec.
			work, err := maestro.AgentWork(pb)
			if err != nil {
				t.Fatalf("record %d: agent codec: %v", i, err)
			}
			cluster := work.Namespace
			if !subscribed[cluster] || cluster != maestro.StringAttr(pb, maestro.AttrClusterName) {
				t.Fatalf("record %d: spec for %q, not a subscribed cluster", i, cluster)
			}
			if string(work.UID) != rec.ResourceID || !strings.HasPrefix(work.Name, cluster+WorkNameInfix) {
				t.Fatalf("record %d: work %s uid %s, record resource id %s", i, work.Name, work.UID, rec.ResourceID)
			}
			if rid := maestro.ResourceID(p.SourceID, cluster, work.Name); rid != rec.ResourceID {
				t.Fatalf("record %d: resource id %s, SDK derivation gives %s", i, rec.ResourceID, rid)
			}
			if got := work.Spec.Workload.Manifests; len(got) != len(wantManifests) {
				t.Fatalf("record %d: %d manifests", i, len(got))
			}
			for j, m := range work.Spec.Workload.Manifests {
				want, err := wantManifests[j].MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.Raw, want) {
					t.Fatalf("record %d: manifest %d is %s, want %s", i, j, m.Raw, want)
				}
			}
			if !reflect.DeepEqual(work.Spec.ManifestConfigs, w.Configs) {
				t.Fatalf("record %d: manifestConfigs differ", i)
			}
			if _, dup := specs[rec.ResourceID]; dup {
				t.Fatalf("record %d: resource id %s created twice", i, rec.ResourceID)
			}
			specs[rec.ResourceID] = i
		case format.FlowAgentToServer:
			if !rec.HasTrigger || rec.Trigger >= uint64(i) {
				t.Fatalf("record %d: status trigger %v/%d", i, rec.HasTrigger, rec.Trigger)
			}
			spec := recs[rec.Trigger]
			if spec.Flow != format.FlowSourceToServer || spec.ResourceID != rec.ResourceID || spec.Offset+rec.Delay != rec.Offset || rec.Delay < minDelay {
				t.Fatalf("record %d: status answers record %d (%v %s at %v) with delay %v at %v", i, rec.Trigger, spec.Flow, spec.ResourceID, spec.Offset, rec.Delay, rec.Offset)
			}
			pb, err := maestro.Unmarshal(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			evt, err := maestro.ToCloudEvent(pb)
			if err != nil {
				t.Fatal(err)
			}
			// What a source makes of it, with the SDK's source codec.
			work, err := sourcecodec.NewManifestBundleCodec().Decode(evt)
			if err != nil {
				t.Fatalf("record %d: source codec: %v", i, err)
			}
			hash, err := maestro.StatusHash(work.Status)
			if err != nil {
				t.Fatal(err)
			}
			if got := maestro.StringAttr(pb, maestro.AttrStatusHash); got != hash {
				t.Fatalf("record %d: statushash %s, SDK computes %s", i, got, hash)
			}
			keys, err := maestro.ExtractKeys(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			if keys.ClusterName != rec.Actor || keys.OriginalSource != maestro.BrokerSource || keys.ResourceVersion != 1 || keys.Source != maestro.AgentID(rec.Actor) {
				t.Fatalf("record %d: status keys %+v", i, keys)
			}
			if lastSeq != "" && !seqLess(lastSeq, keys.SequenceID) {
				t.Fatalf("record %d: sequence id %s not after %s", i, keys.SequenceID, lastSeq)
			}
			lastSeq = keys.SequenceID
			statuses[rec.ResourceID] = append(statuses[rec.ResourceID], i)
		default:
			t.Fatalf("record %d: unexpected flow %v", i, rec.Flow)
		}
	}
	if len(specs) != p.Clusters*p.WorksPerCluster || len(statuses) != len(specs) || len(subscribed) != p.Clusters {
		t.Fatalf("%d specs, %d works with status, %d subscribed clusters", len(specs), len(statuses), len(subscribed))
	}
	for rid, idx := range statuses {
		if len(idx) != p.StatusUpdates {
			t.Fatalf("%s has %d statuses, want %d", rid, len(idx), p.StatusUpdates)
		}
	}
}

func seqLess(a, b string) bool {
	return len(a) < len(b) || len(a) == len(b) && a < b
}

// TestGenerateDeterministic generates the same trace with different
// parallelism and checks the files are byte-identical.
func TestGenerateDeterministic(t *testing.T) {
	p := tinyParams()
	p.Clusters, p.WorksPerCluster = 20, 10
	p.SegmentSize = 64 << 10 // several segments
	var dirs []string
	for _, procs := range []int{1, 2, 4} {
		p.Workers = procs
		prev := runtime.GOMAXPROCS(procs)
		dir := filepath.Join(t.TempDir(), "trace")
		_, err := Generate(context.Background(), dir, p, nil)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	files, err := os.ReadDir(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d files: want several segments", len(files))
	}
	for _, f := range files {
		a, err := os.ReadFile(filepath.Join(dirs[0], f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs[1:] {
			b, err := os.ReadFile(filepath.Join(d, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("%s differs between runs with different parallelism", f.Name())
			}
		}
	}
}

// TestSeedChangesIDsNotShape checks that another seed changes the random
// choices but not the structure.
func TestSeedChangesIDsNotShape(t *testing.T) {
	p := tinyParams()
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	ma, err := Generate(context.Background(), dirA, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Seed = 2
	mb, err := Generate(context.Background(), dirB, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ma.Digest == mb.Digest {
		t.Fatal("another seed gave the same digest")
	}
	if !reflect.DeepEqual(ma.CountsByFlow, mb.CountsByFlow) || !reflect.DeepEqual(ma.Consumers, mb.Consumers) {
		t.Fatal("another seed changed the trace's shape")
	}
}

// TestGenerateCancelled: a generation cancelled midway, after segments
// were written, removes what it wrote, and the folder if it made it; a
// folder that was there before stays, with what else it held.
func TestGenerateCancelled(t *testing.T) {
	p := tinyParams()
	p.Clusters, p.WorksPerCluster = 100, 100 // more records than one progress step
	p.SegmentSize = 64 << 10                 // segments written before the cancel
	for _, existing := range []bool{false, true} {
		root := t.TempDir()
		dir := filepath.Join(root, "trace")
		if existing {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		segments := 0
		_, err := Generate(ctx, dir, p, func(done, total int64) {
			if done < total {
				segs, _ := filepath.Glob(filepath.Join(dir, "*"+format.SegmentExt))
				segments = len(segs)
				cancel(errors.New("test cancel"))
			}
		})
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "test cancel") || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("existing folder %v: got %v, want context.Canceled with its cause, saying the trace was removed", existing, err)
		}
		if segments == 0 {
			t.Fatalf("no segment was written before the cancel: the test proves nothing")
		}
		var left []string
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if path != root {
				left = append(left, strings.TrimPrefix(path, root+"/"))
			}
			return nil
		})
		want := []string(nil)
		if existing {
			want = []string{"trace", "trace/notes.txt"}
		}
		if !reflect.DeepEqual(left, want) {
			t.Errorf("existing folder %v: left %q after the cancel, want %q", existing, left, want)
		}
	}
}

func TestGenerateRefusesExistingTrace(t *testing.T) {
	p := tinyParams()
	dir := filepath.Join(t.TempDir(), "trace")
	if _, err := Generate(context.Background(), dir, p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), dir, p, nil); err == nil {
		t.Fatal("generating into a folder that holds a trace succeeded")
	}
}

// TestTraceMatchesBuilders rebuilds a sample of a trace's records with
// the maestro package's full-marshal builders and compares the bytes.
func TestTraceMatchesBuilders(t *testing.T) {
	p := tinyParams()
	p.StatusUpdates = 2
	dir := filepath.Join(t.TempDir(), "trace")
	if _, err := Generate(context.Background(), dir, p, nil); err != nil {
		t.Fatal(err)
	}
	_, recs := readAll(t, dir)
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, rec := range recs {
		if rec.Flow != format.FlowSourceToServer && rec.Flow != format.FlowAgentToServer || i%3 != 0 {
			continue
		}
		pb, err := maestro.Unmarshal(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		at := pb.Attributes[maestro.AttrTime].GetCeTimestamp().AsTime()
		if !at.Equal(p.StartTime.Add(rec.Offset)) {
			t.Fatalf("record %d: event time %v, want start + offset %v", i, at, p.StartTime.Add(rec.Offset))
		}
		var want *pbv1.CloudEvent
		cluster := maestro.StringAttr(pb, maestro.AttrClusterName)
		if rec.Flow == format.FlowSourceToServer {
			name := strings.TrimSuffix(strings.SplitAfter(maestro.StringAttr(pb, maestro.AttrMetadata), `"name":"`)[1], "")
			name = name[:strings.IndexByte(name, '"')]
			work, err := w.SpecWork(p.SourceID, cluster, name)
			if err != nil {
				t.Fatal(err)
			}
			want, err = maestro.NewSpecEvent(maestro.TypeSpecCreate, p.SourceID, work, maestro.EventOptions{ID: pb.Id, Time: at})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			spec := recs[rec.Trigger]
			created := p.StartTime.Add(spec.Offset)
			phase, applied := PhaseApplied, at
			if i2 := statusIndex(recs, rec.ResourceID, i); i2 == 1 { // the second report
				phase = PhaseAvailable
				first := recs[firstStatus(recs, rec.ResourceID)]
				applied = p.StartTime.Add(first.Offset)
			}
			st, err := w.Status(p.Status, phase, StatusTimes{Applied: applied, Available: at, Ready: at}, 1)
			if err != nil {
				t.Fatal(err)
			}
			want, err = maestro.NewStatusEvent(cluster, w.StatusWork(cluster, rec.ResourceID, 1, created, st),
				maestro.StringAttr(pb, maestro.AttrSequenceID), maestro.EventOptions{ID: pb.Id, Time: at})
			if err != nil {
				t.Fatal(err)
			}
		}
		b, err := maestro.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Data, b) {
			t.Fatalf("record %d (%v): %s", i, rec.Flow, diffAt(rec.Data, b))
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("only %d records checked", checked)
	}
}

// statusIndex returns which report (0, 1) of its work record i is.
func statusIndex(recs []*format.Record, rid string, i int) int {
	n := 0
	for j := 0; j < i; j++ {
		if recs[j].Flow == format.FlowAgentToServer && recs[j].ResourceID == rid {
			n++
		}
	}
	return n
}

func firstStatus(recs []*format.Record, rid string) int {
	for j, r := range recs {
		if r.Flow == format.FlowAgentToServer && r.ResourceID == rid {
			return j
		}
	}
	return -1
}
