package generate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// FuzzParseDelay: any flag value either fails with an error or gives a
// valid distribution whose String parses back to it, and sampling it
// never panics.
func FuzzParseDelay(f *testing.F) {
	for _, s := range []string{"1s", "fixed:0s", "lognormal:median=1s,sigma=0.5,max=30s", "uniform:min=1ms,max=2s", "lognormal:", "uniform:min=,max=1s", "x:y=z", "uniform:min=0s,max=2562047h47m16.854775807s", "lognormal:median=2562047h,sigma=10,max=2562047h47m16s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDelay(s)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseDelay(%q) = %+v, which does not validate: %v", s, d, err)
		}
		again, err := ParseDelay(d.String())
		if err != nil || again != d {
			t.Fatalf("%q: String %q parses to %+v, %v", s, d.String(), again, err)
		}
		r := workRand(1, 2)
		for i := 0; i < 10; i++ {
			if v := d.Sample(r); v < minDelay {
				t.Fatalf("%q sampled %v", s, v)
			}
		}
	})
}

// FuzzParamsFromMap: the parameters recorded in a manifest (read from
// disk) either fail to parse with an error or give parameters that
// validate and, when small, generate without panicking.
func FuzzParamsFromMap(f *testing.F) {
	f.Add("clusters=2;works-per-cluster=3;rate=1000;status-updates=2")
	f.Add("order=round-robin;creators=1;apply-delay=fixed:0s;subscribe-batch=1")
	f.Add("clusters=1;works-per-cluster=1;status=scale-test;seed=-5;start-time=2030-01-01T00:00:00Z")
	f.Add("clusters=3;works-per-cluster=2;order=cluster;cluster-prefix=x;rate=1e9;subscribe-gap=0s;subscribe-pause=0s")
	f.Fuzz(func(t *testing.T, s string) {
		m := map[string]string{}
		for _, kv := range strings.Split(s, ";") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		p, err := ParamsFromMap(m)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParamsFromMap(%v) gave parameters that do not validate: %v", m, err)
		}
		if p.Works() > 50 || p.Clusters > 50 {
			return
		}
		g, err := newGenerator(p.resolved())
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := g.run(context.Background(), func(*format.Record) error { n++; return nil }, func(int64, int64) {}); err != nil {
			t.Fatal(err)
		}
		if n != p.Records() {
			t.Fatalf("%v: %d records, want %d", m, n, p.Records())
		}
	})
}

// FuzzWorkloadFile feeds arbitrary files to the workload reader: it never
// panics, a refusal is ErrWorkload and names the file, and an accepted
// workload makes a spec event the agent codec decodes.
func FuzzWorkloadFile(f *testing.F) {
	f.Add([]byte(appYAML))
	f.Add([]byte(manifestWorkYAML))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# c\n"))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"{{.Work}}\"}}"))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{if .Index}}x{{end}}\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "w.yaml")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		cw, err := loadWorkload(path, WorkData{Cluster: "c1", Work: "c1-w-0"})
		if err != nil {
			if !errors.Is(err, ErrWorkload) || !strings.Contains(err.Error(), path) {
				t.Fatalf("refusal %q: not ErrWorkload naming the file", err)
			}
			return
		}
		w, err := cw.forWork(WorkData{Cluster: "c1", Work: "c1-w-0"})
		if err != nil {
			t.Fatalf("loaded, then refused for the same work: %v", err)
		}
		e, err := newEncoder(w, "maestro", StatusRealistic, 1)
		if err != nil {
			t.Fatalf("accepted workload has no encoder: %v", err)
		}
		rid := maestro.ResourceID("maestro", "c1", "c1-w-0")
		pb, err := maestro.Unmarshal(e.appendSpec(nil, &specInput{
			cluster: []byte("c1"), workName: []byte("c1-w-0"), resourceID: []byte(rid), id: []byte("id"), at: time.Unix(1e9, 0),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := maestro.AgentWork(pb); err != nil {
			t.Fatalf("the agent codec refuses the spec: %v", err)
		}
	})
}
