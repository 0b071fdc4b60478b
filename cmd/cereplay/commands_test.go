package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/fixtures"
	"github.com/cereplay/cereplay/maestro"
)

// sharedExample reads a golden event from testdata/protocol/examples and
// returns the CloudEvent bytes (unwrapping a PublishRequest).
func sharedExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures.Examples(t), name))
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := maestro.PublishRequestEvent(b); err == nil {
		return ev
	}
	return b
}

// writeTrace writes a small real trace: two agents subscribe, the source
// creates one work per cluster, each agent answers with a status.
func writeTrace(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "trace")
	w, err := format.Create(dir, format.WriterOptions{Provenance: format.Provenance{Tool: "test", Params: map[string]string{"clusters": "2"}}})
	if err != nil {
		t.Fatal(err)
	}
	spec := sharedExample(t, "01-source-spec-create_request.pb.bin")
	status := sharedExample(t, "03rb-agent-status-update_request-realistic-available.pb.bin")
	keys, err := maestro.ExtractKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	var recs []format.Record
	for i, cluster := range []string{"maestro-cluster-1", "maestro-cluster-2"} {
		sub, err := proto.Marshal(maestro.AgentSubscription(cluster))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, format.Record{Type: format.TypeEvent, Offset: time.Duration(i) * time.Millisecond,
			Flow: format.FlowAgentSubscribe, Actor: cluster, Data: sub})
	}
	recs = append(recs,
		format.Record{Type: format.TypeEvent, Offset: 10 * time.Millisecond, Flow: format.FlowSourceToServer,
			Actor: "maestro", ResourceID: keys.ResourceID, EventType: keys.Type, Data: spec},
		format.Record{Type: format.TypeEvent, Offset: 1010 * time.Millisecond, Flow: format.FlowAgentToServer,
			Actor: "maestro-cluster-1", ResourceID: keys.ResourceID, EventType: maestro.TypeStatusUpdate,
			HasTrigger: true, Trigger: 2, Delay: time.Second, Data: status})
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInspect(t *testing.T) {
	dir := writeTrace(t)
	code, out, stderr := runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, stderr)
	}
	for _, want := range []string{"digest", "sha256:", "consumers", "maestro-cluster-1", "records", "4 in 1 segment",
		"flow source>server", "type status.update_request", "time span", "1.01s", "ratio"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "inspect", "--json", dir)
	var m format.Manifest
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.Records != 4 || len(m.Consumers) != 2 {
		t.Fatalf("inspect --json: code %d, manifest %+v", code, m)
	}
}

func TestCat(t *testing.T) {
	dir := writeTrace(t)
	code, out, stderr := runCLI(t, "cat", dir)
	if code != 0 {
		t.Fatalf("cat: %d %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("cat printed %d lines, want 4:\n%s", len(lines), out)
	}
	var last catLine
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Index != 3 || last.Flow != "agent>server" || last.Trigger == nil || *last.Trigger != 2 || last.DelayNS != int64(time.Second) {
		t.Errorf("last record: %+v", last)
	}

	code, out, _ = runCLI(t, "cat", "--type", "status.update_request", "--cluster", "maestro-cluster-1", "--data", dir)
	if code != 0 {
		t.Fatalf("cat --data: %d", code)
	}
	var l struct {
		Event struct {
			Type string `json:"type"`
			Data struct {
				Conditions []struct{ Type string } `json:"conditions"`
			} `json:"data"`
			ClusterName string `json:"clustername"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("cat --data output %q: %v", out, err)
	}
	if l.Event.Type != maestro.TypeStatusUpdate || l.Event.ClusterName != "maestro-cluster-1" ||
		len(l.Event.Data.Conditions) != 2 || l.Event.Data.Conditions[1].Type != "Available" {
		t.Errorf("decoded event: %+v", l.Event)
	}

	code, out, _ = runCLI(t, "cat", "--flow", "agent-subscribe", "--limit", "1", "--data", dir)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"clusterName":"maestro-cluster-1"`) {
		t.Errorf("cat --flow agent-subscribe --limit 1: code %d out %q", code, out)
	}
}

func TestVerify(t *testing.T) {
	dir := writeTrace(t)
	code, out, stderr := runCLI(t, "verify", dir)
	if code != 0 || !strings.HasPrefix(out, "ok ") || !strings.Contains(out, "sha256:") {
		t.Fatalf("verify intact trace: code %d out %q err %q", code, out, stderr)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+format.SegmentExt))
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "verify", dir)
	if code != 1 || !strings.Contains(stderr, filepath.Base(segs[0])) {
		t.Fatalf("verify damaged trace: code %d stderr %q", code, stderr)
	}
}
