package generate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
)

// TestSampleTracesRegenerate makes every committed sample trace again from
// the parameters its own manifest records, and checks the digest and every
// file are the same, and that traces/README.md publishes that digest.
func TestSampleTracesRegenerate(t *testing.T) {
	root := filepath.Join("..", "traces")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Glob(filepath.Join(root, "*", format.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if len(manifests) < 2 {
		t.Fatalf("found %d sample traces under %s, want the tiny one and the 100x50 one", len(manifests), root)
	}
	for _, mf := range manifests {
		dir := filepath.Dir(mf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			if err := format.Verify(dir); err != nil {
				t.Fatalf("committed trace does not verify: %v", err)
			}
			committed, err := format.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(readme), committed.Digest) {
				t.Errorf("traces/README.md does not list %s's digest %s", filepath.Base(dir), committed.Digest)
			}
			if committed.Provenance.Tool != Tool || committed.Provenance.Version != ModelVersion {
				t.Fatalf("made by %s %s, not this generator (%s %s): regenerate it", committed.Provenance.Tool, committed.Provenance.Version, Tool, ModelVersion)
			}
			p, err := ParamsFromMap(committed.Provenance.Params)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "again")
			m, err := Generate(context.Background(), out, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != committed.Digest {
				t.Fatalf("regenerated digest %s, committed %s: if the format or the generator changed on purpose, "+
					"make the samples again with the commands in traces/README.md and update the digests there", m.Digest, committed.Digest)
			}
			for _, s := range committed.Segments {
				a, errA := os.ReadFile(filepath.Join(dir, s.Name))
				b, errB := os.ReadFile(filepath.Join(out, s.Name))
				if errA != nil || errB != nil || !bytes.Equal(a, b) {
					t.Fatalf("segment %s differs (%v, %v)", s.Name, errA, errB)
				}
			}
		})
	}
}
