package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/sim"
)

// twoDocWorkload is a custom workload of two documents with placeholders.
const twoDocWorkload = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Work}}-settings
  namespace: team-a
data:
  cluster: {{.Cluster}}
  index: "{{.Index}}"
---
apiVersion: v1
kind: Service
metadata:
  name: svc-{{.Index}}
  namespace: team-a
spec:
  ports: [{port: 80}]
`

// generateTrace writes a small generated trace for p into a temporary
// folder.
func generateTrace(t *testing.T, p generate.Params) string {
	t.Helper()
	p.SubscribePause, p.SubscribeGap, p.CreateAfter = 0, 0, 0
	dir := filepath.Join(t.TempDir(), "trace")
	if _, err := generate.Generate(context.Background(), dir, p, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// replayOK replays trace into s (at --max, consumers created, then tune)
// and fails the test, listing every outcome that is not a success, unless
// the run is OK. It returns the result and the run folder.
func replayOK(t *testing.T, s *sim.Server, trace string, tune func(*Config)) (*Result, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	cfg := baseConfig(s, trace, out)
	cfg.Max, cfg.CreateConsumers = true, true
	if tune != nil {
		tune(&cfg)
	}
	var log bytes.Buffer
	cfg.Log = &logWriter{b: &log}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		for i, o := range readOutcomes(t, out) {
			if st := o[0].Outcome.Status; st != format.OutcomeDelivered && st != format.OutcomeSent {
				t.Logf("record %d %s %s %s %s: %+v", i, o[0].Flow, o[0].Actor, maestro.ShortType(o[0].EventType), o[0].ResourceID, o[0].Outcome)
			}
		}
		t.Fatalf("run not OK: %v\nlog:\n%s", res.Summary.Problems, log.String())
	}
	return res, out
}

// bundleManifests returns the manifests of the bundle id over REST, or
// nil when it does not exist.
func bundleManifests(t *testing.T, rest *maestro.RESTClient, id string) []map[string]any {
	t.Helper()
	b, err := rest.GetResourceBundle(context.Background(), id)
	if err != nil {
		if errors.Is(err, maestro.ErrNotFound) {
			return nil
		}
		t.Fatal(err)
	}
	var out []map[string]any
	for _, m := range b.Manifests {
		var obj map[string]any
		if err := json.Unmarshal(m, &obj); err != nil {
			t.Fatal(err)
		}
		out = append(out, obj)
	}
	return out
}

// TestReplayCustomWorkload generates a trace from a two-document workload,
// replays it against sim and finds every work's manifests, rendered for
// that work, in its bundle over REST.
func TestReplayCustomWorkload(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, []byte(twoDocWorkload), 0o644); err != nil {
		t.Fatal(err)
	}
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 3, 4
	p.Workloads = []generate.WorkloadSpec{{Path: file, Weight: 1}}
	trace := generateTrace(t, p)
	res, out := replayOK(t, s, trace, nil)
	checkAccounting(t, trace, out)
	if res.Summary.SpecsSent != 12 || res.Summary.StatusesSent != 12 {
		t.Errorf("specs %d, statuses %d, want 12 and 12", res.Summary.SpecsSent, res.Summary.StatusesSent)
	}

	rest, err := maestro.NewRESTClient(s.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for c := 1; c <= p.Clusters; c++ {
		for i := 0; i < p.WorksPerCluster; i++ {
			cluster := cluster(c - 1)
			work := cluster + generate.CustomWorkNameInfix + strconv.Itoa(i)
			objs := bundleManifests(t, rest, maestro.ResourceID(p.SourceID, cluster, work))
			if len(objs) != 2 {
				t.Fatalf("bundle of %s holds %d manifests, want 2", work, len(objs))
			}
			cm, svc := objs[0], objs[1]
			md := cm["metadata"].(map[string]any)
			data := cm["data"].(map[string]any)
			if cm["kind"] != "ConfigMap" || md["name"] != work+"-settings" || md["namespace"] != "team-a" ||
				data["cluster"] != cluster || data["index"] != strconv.Itoa(i) {
				t.Errorf("bundle of %s: first manifest %v", work, cm)
			}
			if svc["kind"] != "Service" || svc["metadata"].(map[string]any)["name"] != "svc-"+strconv.Itoa(i) {
				t.Errorf("bundle of %s: second manifest %v", work, svc)
			}
		}
	}
}

// TestReplayUpdatesAndDeletes replays a trace where every work is created,
// updated twice and deleted, against sim at --max: every event is
// accounted (each update and delete delivered to its agent, each status
// forwarded), the deleted works' bundles are gone and the others hold
// their last update.
func TestReplayUpdatesAndDeletes(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.UpdatesPerWork = 3, 4, 2
	p.Delete = true
	deleted := generateTrace(t, p)
	p.Delete, p.Seed, p.SourceID = false, 2, "kept"
	kept := generateTrace(t, p)

	rest, err := maestro.NewRESTClient(s.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		trace    string
		sourceID string
		delete   bool
	}{{deleted, "maestro", true}, {kept, "kept", false}} {
		res, out := replayOK(t, s, tc.trace, nil)
		sum := res.Summary
		outs := checkAccounting(t, tc.trace, out)
		specs, statuses := int64(12*3), int64(12*3)
		if tc.delete {
			specs, statuses = 12*4, 12*4
		}
		if sum.SpecsSent != specs || sum.StatusesSent != statuses || sum.SpecDelivery.Count != specs || sum.StatusForward.Count != statuses {
			t.Errorf("%s: specs %d (delivered %d), statuses %d (forwarded %d), want %d and %d",
				tc.sourceID, sum.SpecsSent, sum.SpecDelivery.Count, sum.StatusesSent, sum.StatusForward.Count, specs, statuses)
		}
		types := map[string]int{}
		for _, o := range outs {
			if o[0].Flow == format.FlowSourceToServer {
				if o[0].Outcome.Status != format.OutcomeDelivered {
					t.Errorf("%s: %s %s: %+v", tc.sourceID, o[0].EventType, o[0].ResourceID, o[0].Outcome)
				}
				types[maestro.ShortType(o[0].EventType)]++
			}
		}
		t.Logf("%s: delivered spec events %v", tc.sourceID, types)

		for c := 0; c < p.Clusters; c++ {
			for i := 0; i < p.WorksPerCluster; i++ {
				work := cluster(c) + generate.WorkNameInfix + strconv.Itoa(i)
				rid := maestro.ResourceID(tc.sourceID, cluster(c), work)
				b, err := rest.GetResourceBundle(context.Background(), rid)
				switch {
				case tc.delete && !errors.Is(err, maestro.ErrNotFound):
					t.Errorf("deleted work %s: bundle still there (%v)", work, err)
				case !tc.delete && err != nil:
					t.Errorf("kept work %s: %v", work, err)
				case !tc.delete:
					if b.Version != 3 || len(b.Manifests) != 7 || !bytes.Contains(b.Manifests[0], []byte(`"cereplay.io/update":"2"`)) {
						t.Errorf("kept work %s: version %d, first manifest %s", work, b.Version, b.Manifests[0])
					}
					if !bytes.Contains(b.Status, []byte(`"observedGeneration":3`)) {
						t.Errorf("kept work %s: status is not of generation 3: %.300s", work, b.Status)
					}
				}
			}
		}
	}
}

// TestReplayChurn replays a churn phase (creates, updates and deletes
// drawn over a live population) against sim at --max: every event is
// accounted, and over REST each work the trace deleted is gone and each
// other one holds the version of its last update.
func TestReplayChurn(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.UpdatesPerWork = 3, 3, 1
	p.Churn, p.ChurnFor = 20, 3*time.Second
	trace := generateTrace(t, p)
	_, out := replayOK(t, s, trace, nil)
	outs := checkAccounting(t, trace, out)

	// What the trace leaves: a version per live work, none for deleted.
	want := map[string]int64{}
	kinds := map[string]int{}
	for i := uint64(0); i < uint64(len(outs)); i++ { // in trace order
		r := outs[i][0]
		if r.Flow != format.FlowSourceToServer {
			continue
		}
		kinds[maestro.ShortType(r.EventType)]++
		switch r.EventType {
		case maestro.TypeSpecCreate, maestro.TypeSpecUpdate:
			want[r.ResourceID]++
		case maestro.TypeSpecDelete:
			want[r.ResourceID] = 0
		}
	}
	if kinds["spec.delete_request"] == 0 || kinds["spec.update_request"] <= 9 || kinds["spec.create_request"] <= 9 {
		t.Fatalf("the churn drew %v", kinds)
	}
	rest, err := maestro.NewRESTClient(s.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for rid, version := range want {
		b, err := rest.GetResourceBundle(context.Background(), rid)
		switch {
		case version == 0 && !errors.Is(err, maestro.ErrNotFound):
			t.Errorf("deleted %s: bundle still there (%v)", rid, err)
		case version > 0 && err != nil:
			t.Errorf("live %s: %v", rid, err)
		case version > 0 && b.Version != version:
			t.Errorf("live %s: version %d, want %d", rid, b.Version, version)
		}
	}
}

// TestReplayClustersMultiplier plays a trace of 3 clusters 3 times over
// against sim: 9 agents, 3 times the bundles and statuses, every record
// of every copy accounted, and run.json names the rewrite.
func TestReplayClustersMultiplier(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.UpdatesPerWork = 3, 2, 1
	trace := generateTrace(t, p)
	res, out := replayOK(t, s, trace, func(c *Config) { c.ClustersMultiplier = 3 })
	sum := res.Summary
	r, err := format.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	records := r.Manifest().Records
	r.Close()
	outs := readOutcomes(t, out)
	if int64(len(outs)) != 3*records || sum.Records != 3*records {
		t.Fatalf("%d outcomes, summary %d records, for 3 × %d", len(outs), sum.Records, records)
	}
	for i := uint64(0); i < uint64(3*records); i++ {
		if len(outs[i]) != 1 {
			t.Fatalf("record %d has %d outcomes", i, len(outs[i]))
		}
	}
	agents := 0
	for _, n := range sum.AgentsPerAddr {
		agents += n
	}
	works := int64(p.Clusters * p.WorksPerCluster)
	if agents != 9 || sum.ConsumersCreated != 9 || sum.SpecsSent != 3*2*works || sum.StatusesSent != 3*2*works || sum.StatusForward.Count != 3*2*works {
		t.Errorf("agents %d, consumers %d, specs %d, statuses %d (forwarded %d)", agents, sum.ConsumersCreated, sum.SpecsSent, sum.StatusesSent, sum.StatusForward.Count)
	}
	// Per derived cluster: the outcomes of copy 2 of cluster 1 name it.
	perCluster := map[string]int{}
	for _, o := range outs {
		if o[0].Flow == format.FlowAgentToServer {
			perCluster[o[0].Actor]++
		}
	}
	if len(perCluster) != 9 || perCluster["maestro-cluster-1-x3"] != 2*p.WorksPerCluster {
		t.Errorf("statuses per cluster: %v", perCluster)
	}

	rest, err := maestro.NewRESTClient(s.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := rest.ListResourceBundles(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != int(3*works) {
		t.Errorf("%d bundles, want %d", list.Total, 3*works)
	}
	consumers := map[string]int{}
	for _, b := range list.Items {
		consumers[b.ConsumerName]++
		if b.Version != 2 || len(b.Status) == 0 {
			t.Errorf("bundle %s of %s: version %d, status %d bytes", b.ID, b.ConsumerName, b.Version, len(b.Status))
		}
	}
	if len(consumers) != 9 || consumers["maestro-cluster-2-x2"] != p.WorksPerCluster {
		t.Errorf("bundles per consumer: %v", consumers)
	}
	info := readRunInfo(t, out)
	found := false
	for _, rw := range info.Rewrites {
		found = found || rw.Field == "record index"
	}
	if !found || info.Settings["clusters_multiplier"] != "3" {
		t.Errorf("run.json: rewrites %+v, settings %v", info.Rewrites, info.Settings)
	}
}

// TestReplayResyncReconnects replays a fleet restart: after the creates
// and an update, every agent's stream is closed and opened again and its
// spec resync request, listing what it holds under the ids on the wire
// (here remapped by a run id), is answered with nothing: everything is
// accounted and no spec arrives that the replay did not send.
func TestReplayResyncReconnects(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.UpdatesPerWork, p.ResyncReconnects = 3, 2, 1, true
	trace := generateTrace(t, p)
	res, out := replayOK(t, s, trace, func(c *Config) {
		// Paced, as a restart comes seconds after the last status: at --max
		// a resync request could leave before the update it should list had
		// arrived. 5 times the recorded speed leaves the restart 1-2 s after
		// the updates: at 20 times (0.25-0.5 s) a Publish slowed by a busy
		// machine could still be in flight when its agent reconnected.
		c.Max, c.Speed, c.RunID = false, 5, "restart"
	})
	sum := res.Summary
	outs := checkAccounting(t, trace, out)
	resyncs := 0
	for _, o := range outs {
		if o[0].EventType == maestro.TypeSpecResyncRequest && o[0].Outcome.Status == format.OutcomeSent {
			resyncs++
		}
	}
	if resyncs != 3 || sum.ResyncsSent != 3 || sum.Reconnects != 3 {
		t.Errorf("resync records sent %d, resyncs %d, reconnects %d; want 3 each", resyncs, sum.ResyncsSent, sum.Reconnects)
	}
	if sum.UnexpectedSpecs != 0 {
		t.Errorf("%d specs arrived that the replay did not send: the resync listed stale versions or ids", sum.UnexpectedSpecs)
	}
}
