package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/generate"
)

func TestDiffCommand(t *testing.T) {
	t.Parallel()
	// b is a with one more cluster: its subscribe, 3 specs and 3 statuses.
	gen := func(clusters int) string {
		dir := filepath.Join(t.TempDir(), "trace")
		p := generate.DefaultParams()
		p.Clusters, p.WorksPerCluster = clusters, 3
		if _, err := generate.Generate(context.Background(), dir, p, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b := gen(2), gen(3)

	code, out, errOut := runCLI(t, "diff", a, a)
	if code != 0 || !strings.Contains(out, "same: 15 records equal") || errOut != "" {
		t.Fatalf("self: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "diff", a, b)
	if code != 1 || !strings.Contains(out, "15 equal, 0 only in A, 7 only in B, 0 changed") ||
		!strings.Contains(out, "only in B (record ") || !strings.Contains(errOut, "A and B differ: 0 only in A, 7 only in B") {
		t.Fatalf("one more cluster: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "diff", "--json", "--max-diffs", "0", b, a)
	var res struct {
		OnlyA       int64             `json:"only_a"`
		Differences []json.RawMessage `json:"differences"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 1 || err != nil || res.OnlyA != 7 || len(res.Differences) != 0 {
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
