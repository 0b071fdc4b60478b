package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
)

func TestDiffCommand(t *testing.T) {
	t.Parallel()
	a := filepath.Join(t.TempDir(), "a")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 2, 3
	if _, err := generate.Generate(context.Background(), a, p, nil); err != nil {
		t.Fatal(err)
	}
	// b is a without its last record, a status.
	b := filepath.Join(t.TempDir(), "b")
	r, err := format.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	w, err := format.Create(b, format.WriterOptions{})
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
		if i != 14 {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "diff", a, a)
	if code != 0 || !strings.Contains(out, "same: 15 records equal") || errOut != "" {
		t.Fatalf("self: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "diff", a, b)
	if code != 1 || !strings.Contains(out, "14 equal, 1 only in A, 0 only in B, 0 changed") ||
		!strings.Contains(out, "only in A (record 14)") || !strings.Contains(errOut, "1 records differ") {
		t.Fatalf("missing record: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "diff", "--json", "--max-diffs", "0", b, a)
	var res struct {
		OnlyB       int64             `json:"only_b"`
		Differences []json.RawMessage `json:"differences"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 1 || err != nil || res.OnlyB != 1 || len(res.Differences) != 0 {
		t.Fatalf("--json: exit %d, %v, %+v\n%s", code, err, res, out)
	}
	for _, args := range [][]string{
		{"diff", a},
		{"diff", a, filepath.Join(t.TempDir(), "nope")},
		{"diff", "--ignore", "data..x", a, a},
		{"diff", "--max-diffs", "-1", a, a},
		{"diff", "--run", t.TempDir(), a, a},
	} {
		if code, _, errOut := runCLI(t, args...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}
