package generate

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// appYAML is a two-document workload with placeholders.
const appYAML = `# one config map and one deployment per work
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Work}}-config
  namespace: default
data:
  cluster: "{{.Cluster}}"
  index: "{{.Index}}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.Work}}
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

// manifestWorkYAML is a ManifestWork without placeholders that asks for a
// Deployment's status.
const manifestWorkYAML = `apiVersion: work.open-cluster-management.io/v1
kind: ManifestWork
metadata:
  name: ignored
  labels:
    team: payments
spec:
  deleteOption:
    propagationPolicy: Orphan
  workload:
    manifests:
    - apiVersion: apps/v1
      kind: Deployment
      metadata: {name: api, namespace: payments}
      spec:
        selector: {matchLabels: {app: api}}
        template:
          metadata: {labels: {app: api}}
          spec: {containers: [{name: api, image: "api:1"}]}
  manifestConfigs:
  - resourceIdentifier: {group: apps, resource: deployments, name: api, namespace: payments}
    feedbackRules:
    - type: JSONPaths
      jsonPaths: [{name: status, path: .status}]
`

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// specManifests decodes the spec records of a trace as the agent does, by work
// name, and checks that every status decodes with its statushash.
func specManifests(t *testing.T, recs []*format.Record) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, r := range recs {
		if r.Flow == format.FlowAgentToServer {
			checkDecodes(t, r)
		}
		if r.Flow != format.FlowSourceToServer {
			continue
		}
		pb, err := maestro.Unmarshal(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		work, err := maestro.AgentWork(pb)
		if err != nil {
			t.Fatal(err)
		}
		var name struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(maestro.StringAttr(pb, maestro.AttrMetadata)), &name); err != nil {
			t.Fatal(err)
		}
		for _, m := range work.Spec.Workload.Manifests {
			var obj map[string]any
			if err := json.Unmarshal(m.Raw, &obj); err != nil {
				t.Fatal(err)
			}
			out[name.Name] = append(out[name.Name], obj)
		}
	}
	return out
}

func TestCustomWorkloadRendersPerWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := tinyParams()
	p.Workloads = []WorkloadSpec{{Path: writeFile(t, dir, "app.yaml", appYAML), Weight: 1}}
	trace := filepath.Join(dir, "trace")
	m, err := Generate(context.Background(), trace, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Provenance.Params["workload"] != p.Workloads[0].Path || len(m.Provenance.Params["workload-sha256"]) != 64 {
		t.Errorf("manifest params: workload %q, sha256 %q", m.Provenance.Params["workload"], m.Provenance.Params["workload-sha256"])
	}
	_, recs := readAll(t, trace)
	works := specManifests(t, recs)
	if len(works) != p.Clusters*p.WorksPerCluster {
		t.Fatalf("%d works, want %d", len(works), p.Clusters*p.WorksPerCluster)
	}
	objs := works["maestro-cluster-3-w-4"]
	if len(objs) != 2 {
		t.Fatalf("work maestro-cluster-3-w-4 has %d manifests: %v", len(objs), objs)
	}
	cm, dep := objs[0], objs[1]
	if cm["kind"] != "ConfigMap" || cm["metadata"].(map[string]any)["name"] != "maestro-cluster-3-w-4-config" {
		t.Errorf("first manifest: %v", cm)
	}
	if d := cm["data"].(map[string]any); d["cluster"] != "maestro-cluster-3" || d["index"] != "4" {
		t.Errorf("config map data: %v", d)
	}
	if dep["kind"] != "Deployment" || dep["metadata"].(map[string]any)["name"] != "maestro-cluster-3-w-4" {
		t.Errorf("second manifest: %v", dep)
	}

	// Same flags, same bytes; other file contents, another digest.
	again, err := Generate(context.Background(), filepath.Join(dir, "again"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != m.Digest {
		t.Errorf("digest %s then %s", m.Digest, again.Digest)
	}
	writeFile(t, dir, "app.yaml", strings.Replace(appYAML, "nginx:1.27", "nginx:1.28", 1))
	other, err := Generate(context.Background(), filepath.Join(dir, "other"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest == m.Digest || other.Provenance.Params["workload-sha256"] == m.Provenance.Params["workload-sha256"] {
		t.Error("another workload file gave the same digest")
	}
}

func TestWorkloadMixByWeight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	folder := filepath.Join(dir, "payments")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, folder, "work.yaml", manifestWorkYAML)
	writeFile(t, folder, "README.md", "not a manifest")
	p := tinyParams()
	p.Clusters, p.WorksPerCluster = 20, 10
	p.Workloads = []WorkloadSpec{{Path: folder, Weight: 3}, {Path: GuestbookWorkload, Weight: 1}}
	trace := filepath.Join(dir, "trace")
	m, err := Generate(context.Background(), trace, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Provenance.Params["workload"]; got != folder+":3,guestbook" {
		t.Errorf("workload param %q", got)
	}
	back, err := ParamsFromMap(m.Provenance.Params)
	if err != nil || len(back.Workloads) != 2 || back.Workloads[0] != p.Workloads[0] || back.Workloads[1] != p.Workloads[1] {
		t.Fatalf("params from the manifest: %+v, %v", back.Workloads, err)
	}
	if !strings.Contains(m.Provenance.Command, "--workload "+folder+":3 --workload guestbook") {
		t.Errorf("command %q", m.Provenance.Command)
	}
	_, recs := readAll(t, trace)
	custom, guestbook := 0, 0
	for name, objs := range specManifests(t, recs) {
		switch {
		case strings.Contains(name, WorkNameInfix) && len(objs) == 7:
			guestbook++
		case strings.Contains(name, CustomWorkNameInfix) && len(objs) == 1 && objs[0]["metadata"].(map[string]any)["name"] == "api":
			custom++
		default:
			t.Fatalf("work %s: %d manifests", name, len(objs))
		}
	}
	// 200 works at 3:1: about 150 and 50.
	if custom < 120 || guestbook < 25 || custom+guestbook != 200 {
		t.Errorf("%d custom and %d guestbook works, want about 3:1 of 200", custom, guestbook)
	}
	// The ManifestWork's labels, delete option and feedback rule are kept.
	for _, r := range recs {
		if r.Flow != format.FlowAgentToServer {
			continue
		}
		pb, _ := maestro.Unmarshal(r.Data)
		data := string(pb.GetBinaryData())
		if strings.Contains(data, `"name":"api"`) && !strings.Contains(data, `"type":"JsonRaw"`) {
			t.Fatalf("the Deployment's status feedback is missing: %s", data)
		}
	}
	for _, r := range recs {
		if r.Flow == format.FlowSourceToServer {
			pb, _ := maestro.Unmarshal(r.Data)
			if strings.Contains(string(pb.GetBinaryData()), `"name":"api"`) {
				if !strings.Contains(string(pb.GetBinaryData()), `"deleteOption":{"propagationPolicy":"Orphan"}`) ||
					!strings.Contains(maestro.StringAttr(pb, maestro.AttrMetadata), `"team":"payments"`) {
					t.Fatalf("ManifestWork spec not kept: %s %s", pb.GetBinaryData(), maestro.StringAttr(pb, maestro.AttrMetadata))
				}
				break
			}
		}
	}
}

func TestBadWorkloadIsRefusedWithWhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name, content string
		want          []string
	}{
		{"yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: [x\n",
			[]string{"yaml.yaml: document 2 (line 6)", "line 1"}},
		{"noname", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n", []string{"noname.yaml: document 1 (line 1)", "metadata.name is missing"}},
		{"nokind", "---\n# first\n---\napiVersion: v1\nmetadata: {name: a}\n", []string{"nokind.yaml: document 2 (line 4)", "kind is missing"}},
		{"placeholder", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{.Wrok}}\n", []string{"placeholder.yaml: document 1 (line 1)", "Wrok"}},
		{"syntax", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{.Work}\n", []string{"syntax.yaml: document 1 (line 1)", ":4:"}},
		{"empty", "# nothing\n", []string{"empty.yaml", "no manifest"}},
		{"scalar", "just a string\n", []string{"scalar.yaml: document 1 (line 1)", "not a Kubernetes object"}},
		{"generatename", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  generateName: a-\n", []string{"generatename.yaml", "generateName"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tinyParams()
			p.Workloads = []WorkloadSpec{{Path: writeFile(t, dir, tc.name+".yaml", tc.content), Weight: 1}}
			_, err := Generate(context.Background(), filepath.Join(dir, tc.name), p, nil)
			if !errors.Is(err, ErrWorkload) {
				t.Fatalf("err = %v, want ErrWorkload", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, statErr := os.Stat(filepath.Join(dir, tc.name)); !os.IsNotExist(statErr) {
				t.Errorf("a refused workload left %s behind", tc.name)
			}
		})
	}
}

func TestParseWorkloadSpec(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]WorkloadSpec{
		"a.yaml":        {"a.yaml", 1},
		"a.yaml:3":      {"a.yaml", 3},
		"dir/":          {"dir/", 1},
		"c:/x.yaml":     {"c:/x.yaml", 1},
		"odd:7.yaml:2":  {"odd:7.yaml", 2},
		"guestbook:10":  {"guestbook", 10},
		"with:colon:x1": {"with:colon:x1", 1},
	} {
		got, err := ParseWorkloadSpec(in)
		if err != nil || got != want {
			t.Errorf("ParseWorkloadSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":3", "a.yaml:0", "a.yaml:-1"} {
		if _, err := ParseWorkloadSpec(bad); err == nil {
			t.Errorf("ParseWorkloadSpec(%q) accepted", bad)
		}
	}
}

// A template that calls itself or ranges without end is refused, not run
// for ever.
func TestRunawayPlaceholdersAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"define":   "{{define \"a\"}}{{template \"a\"}}{{template \"a\"}}{{end}}apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n# {{if .Index}}{{template \"x\"}}{{end}}\n",
		"range":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n# {{range 1000000000}}xxxxxxxxxxxxxxxxxxxxxxx{{end}}\n",
	} {
		_, err := loadWorkload(writeFile(t, dir, name+".yaml", content), WorkData{Cluster: "c1", Work: "c1-w-0"})
		if !errors.Is(err, ErrWorkload) {
			t.Errorf("%s: err = %v, want ErrWorkload", name, err)
		}
	}
}
