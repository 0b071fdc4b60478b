package format

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/v1-golden from the current Writer")

// goldenDir is a small version-1 trace committed to the repository. If the
// Writer's bytes change, this test fails: a change of format needs a new
// version, not a silent edit (regenerate with -update only when the
// change is intended and FORMAT.md says so).
const goldenDir = "testdata/v1-golden"

func TestGoldenTrace(t *testing.T) {
	fresh := seedTrace(t)
	if *update {
		os.RemoveAll(goldenDir)
		if err := os.CopyFS(goldenDir, os.DirFS(fresh)); err != nil {
			t.Fatal(err)
		}
	}
	want, err := ReadManifest(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.Digest {
		t.Errorf("the Writer's output changed: digest %s, golden %s", got.Digest, want.Digest)
	}
	if err := Verify(goldenDir); err != nil {
		t.Fatalf("golden trace: %v", err)
	}
	a, err := Open(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; ; i++ {
		x, errA := a.Next()
		y, errB := b.Next()
		if errA == io.EOF && errB == io.EOF {
			break
		}
		if errA != nil || errB != nil {
			t.Fatalf("record %d: golden %v, fresh %v", i, errA, errB)
		}
		if !equalRecords(x, y) {
			t.Fatalf("record %d differs from the golden trace", i)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(goldenDir, "*"+SegmentExt)); len(n) < 2 {
		t.Errorf("golden trace has %d segments, want several", len(n))
	}
}
