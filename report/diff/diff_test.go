package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/maestro"
)

// smallTrace generates a trace of 3 clusters × 4 works: 12 specs, 12
// statuses and 4 subscribes (3 agents, 1 source).
func smallTrace(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "a")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 3, 4
	if _, err := generate.Generate(context.Background(), dir, p, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyTrace writes src's records to a new trace with format.Writer,
// passing each through edit, which returns the records to write in its
// place (none drops it).
func copyTrace(t *testing.T, src string, edit func(i int, rec *format.Record) []*format.Record) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "b")
	r, err := format.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := format.Create(dst, format.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range edit(i, rec) {
			if err := w.Write(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func keep(_ int, rec *format.Record) []*format.Record { return []*format.Record{rec} }

// editData returns a copy of a CloudEvent record with its data changed by
// fn, which gets the data decoded as JSON.
func editData(t *testing.T, rec *format.Record, fn func(data map[string]any)) *format.Record {
	t.Helper()
	ce, err := maestro.Unmarshal(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(ce.GetBinaryData(), &data); err != nil {
		t.Fatal(err)
	}
	fn(data)
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ce.Data = &pbv1.CloudEvent_BinaryData{BinaryData: b}
	c := *rec
	if c.Data, err = maestro.Marshal(ce); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestDiffSelfIsEmpty(t *testing.T) {
	t.Parallel()
	a := smallTrace(t)
	res, err := Diff(context.Background(), a, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Same() || res.Equal != 28 || res.A.Records != 28 || res.B.Records != 28 || len(res.Diffs) != 0 {
		t.Fatalf("self diff: %+v", res)
	}
}

// A copy with one spec's payload changed: exactly that record, and
// exactly the field that changed, named by its JSON path.
func TestDiffOneSpecPayloadChanged(t *testing.T) {
	t.Parallel()
	a := smallTrace(t)
	var target *format.Record
	targetIndex := -1
	b := copyTrace(t, a, func(i int, rec *format.Record) []*format.Record {
		if target == nil && rec.EventType == maestro.TypeSpecCreate && i > 5 {
			target, targetIndex = rec, i
			return []*format.Record{editData(t, rec, func(d map[string]any) {
				md := d["manifests"].([]any)[1].(map[string]any)["metadata"].(map[string]any)
				md["name"] = md["name"].(string) + "-changed"
			})}
		}
		return keep(i, rec)
	})
	res, err := Diff(context.Background(), a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Same() || res.Changed != 1 || res.OnlyA != 0 || res.OnlyB != 0 || res.Equal != 27 || len(res.Diffs) != 1 {
		t.Fatalf("want exactly one changed record: %+v", res)
	}
	d := res.Diffs[0]
	want := Key{Record: "event", Flow: "source>server", Actor: target.Actor, ResourceID: target.ResourceID, EventType: maestro.TypeSpecCreate, Occurrence: 1}
	if d.Kind != Changed || d.Key != want || d.IndexA != int64(targetIndex) || d.IndexB != int64(targetIndex) {
		t.Fatalf("difference %+v, want %+v at %d", d, want, targetIndex)
	}
	if len(d.Fields) != 1 || d.Fields[0].Name != "data.manifests[1].metadata.name" ||
		d.Fields[0].B != d.Fields[0].A+"-changed" {
		t.Fatalf("fields %+v, want only data.manifests[1].metadata.name", d.Fields)
	}
	if len(res.Groups) != 1 || res.Groups[0] != (Group{Record: "event", Flow: "source>server", Type: "spec.create_request", Changed: 1}) {
		t.Fatalf("groups %+v", res.Groups)
	}

	// Ignoring that path, or the whole data, makes them the same.
	for _, ign := range []string{"data.manifests.metadata.name", "data"} {
		res, err := Diff(context.Background(), a, b, Options{Ignore: []string{ign}})
		if err != nil || !res.Same() {
			t.Fatalf("--ignore %s: %+v, %v", ign, res, err)
		}
	}
}

// A record dropped and one added: one only in A, one only in B, nothing
// after them shifted.
func TestDiffMissingAndExtra(t *testing.T) {
	t.Parallel()
	a := smallTrace(t)
	var last *format.Record
	b := copyTrace(t, a, func(i int, rec *format.Record) []*format.Record {
		switch {
		case i == 20:
			return nil
		case i == 26:
			extra := *rec
			extra.Actor = "maestro-cluster-99"
			last = rec
			return []*format.Record{rec, &extra}
		}
		return keep(i, rec)
	})
	res, err := Diff(context.Background(), a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.OnlyA != 1 || res.OnlyB != 1 || res.Changed != 0 || res.Equal != 27 || len(res.Diffs) != 2 {
		t.Fatalf("%+v", res)
	}
	if d := res.Diffs[0]; d.Kind != OnlyA || d.IndexA != 20 || d.IndexB != -1 {
		t.Fatalf("only in A: %+v", d)
	}
	if d := res.Diffs[1]; d.Kind != OnlyB || d.IndexB != 26 || d.Key.Actor != "maestro-cluster-99" || d.Key.EventType != last.EventType {
		t.Fatalf("only in B: %+v", d)
	}
	res, err = Diff(context.Background(), a, b, Options{MaxDiffs: -1})
	if err != nil || len(res.Diffs) != 0 || res.OnlyA != 1 {
		t.Fatalf("MaxDiffs -1: %+v, %v", res, err)
	}
}

// A copy whose resource ids were remapped as a replay with --run-id does
// is the same once the run id is given, and all different without it.
func TestDiffRunIDRemap(t *testing.T) {
	t.Parallel()
	a := smallTrace(t)
	ids := maestro.NewRunIDs("run-2")
	b := copyTrace(t, a, func(i int, rec *format.Record) []*format.Record {
		if rec.ResourceID == "" {
			return keep(i, rec)
		}
		ce, err := maestro.Unmarshal(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		newID := ids.ID(rec.ResourceID)
		maestro.SetStringAttr(ce, maestro.AttrResourceID, newID)
		md := maestro.StringAttr(ce, maestro.AttrMetadata)
		maestro.SetStringAttr(ce, maestro.AttrMetadata, strings.ReplaceAll(md, rec.ResourceID, newID))
		c := *rec
		c.ResourceID = newID
		if c.Data, err = maestro.Marshal(ce); err != nil {
			t.Fatal(err)
		}
		return []*format.Record{&c}
	})
	res, err := Diff(context.Background(), a, b, Options{RunID: "run-2"})
	if err != nil || !res.Same() || res.Equal != 28 {
		t.Fatalf("with the run id: %+v, %v", res, err)
	}
	res, err = Diff(context.Background(), a, b, Options{})
	if err != nil || res.OnlyA != 24 || res.OnlyB != 24 {
		t.Fatalf("without the run id: %+v, %v", res, err)
	}
}

func TestDiffBadInput(t *testing.T) {
	t.Parallel()
	a := smallTrace(t)
	if _, err := Diff(context.Background(), a, filepath.Join(t.TempDir(), "nope"), Options{}); err == nil || !strings.Contains(err.Error(), "diff: B:") {
		t.Fatalf("missing B: %v", err)
	}
	// A damaged segment is refused with its file named.
	b := copyTrace(t, a, keep)
	seg := filepath.Join(b, format.SegmentName(1))
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(seg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Diff(context.Background(), a, b, Options{}); err == nil || !strings.Contains(err.Error(), format.SegmentName(1)) {
		t.Fatalf("damaged B: %v", err)
	}
	if _, err := Diff(context.Background(), a, a, Options{Ignore: []string{"data..x"}}); err == nil {
		t.Fatal("a malformed data path was accepted")
	}
}

// A run folder stands for its outcomes; two outcome traces compare by
// their outcomes, not their timings.
func TestDiffOutcomes(t *testing.T) {
	t.Parallel()
	write := func(note string, lateness int) string {
		run := filepath.Join(t.TempDir(), "run")
		w, err := format.Create(filepath.Join(run, outcomesDir), format.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			rec := &format.Record{Type: format.TypeOutcome, Flow: format.FlowSourceToServer, Actor: "maestro",
				ResourceID: "rid-" + string(rune('a'+i)), EventType: maestro.TypeSpecCreate,
				Outcome: format.Outcome{Index: uint64(i), Status: format.OutcomeSent, Lateness: time.Duration(lateness) * time.Millisecond}}
			if i == 2 {
				rec.Outcome.Status, rec.Outcome.Note = format.OutcomeFailed, note
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, runFile), []byte(`{"run_id":"r1"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		return run
	}
	a, b, c := write("refused", 1), write("refused", 7), write("timed out", 1)
	if res, err := Diff(context.Background(), a, b, Options{}); err != nil || !res.Same() || res.Equal != 3 {
		t.Fatalf("same outcomes, other timings: %+v, %v", res, err)
	}
	res, err := Diff(context.Background(), a, c, Options{})
	if err != nil || res.Changed != 1 || len(res.Diffs) != 1 ||
		!bytes.Equal(mustJSON(t, res.Diffs[0].Fields), mustJSON(t, []Field{{Name: "outcome.note", A: "refused", B: "timed out"}})) {
		t.Fatalf("other note: %+v, %v", res, err)
	}
	if id, err := RunIDOf(a); err != nil || id != "r1" {
		t.Fatalf("RunIDOf = %q, %v", id, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
