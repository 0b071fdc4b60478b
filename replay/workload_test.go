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

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/maestro"
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
	out := filepath.Join(t.TempDir(), "run")

	cfg := baseConfig(s, trace, out)
	cfg.Max, cfg.CreateConsumers = true, true
	var log bytes.Buffer
	cfg.Log = &logWriter{b: &log}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("run not OK: %+v\nlog:\n%s", res.Summary, log.String())
	}
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
