package generate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// compactFile reads a JSON file and returns it compacted.
func compactFile(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return buf.Bytes()
}

var goldenT0 = time.Date(2024, 12, 20, 8, 30, 0, 0, time.UTC)

func TestGuestbookSpecDataMatchesGolden(t *testing.T) {
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	work, err := w.SpecWork("maestro", "maestro-cluster-1", "maestro-cluster-1-gb-0")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(&payload.ManifestBundle{Manifests: work.Spec.Workload.Manifests, ManifestConfigs: work.Spec.ManifestConfigs})
	if err != nil {
		t.Fatal(err)
	}
	want := compactFile(t, filepath.Join(fixtures.Payloads(t), "guestbook-manifestbundle.json"))
	if !bytes.Equal(got, want) {
		t.Fatalf("spec data differs from the golden payload:\n got %d bytes %s\nwant %d bytes %s", len(got), got, len(want), want)
	}
}

func TestStatusDataMatchesGolden(t *testing.T) {
	w, err := Guestbook()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		shape StatusShape
		times StatusTimes
		gen   int64
		file  string
	}{
		{"realistic", StatusRealistic, StatusTimes{goldenT0, goldenT0, goldenT0.Add(4 * time.Second)}, 1, "guestbook-manifestbundlestatus.realistic.json"},
		{"scale-test", StatusScaleTest, StatusTimes{goldenT0, goldenT0, goldenT0}, 1, "guestbook-manifestbundlestatus.maestro-addon-sim.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := w.Status(tc.shape, PhaseAvailable, tc.times, tc.gen)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(&payload.ManifestBundleStatus{Conditions: st.Conditions, ResourceStatus: st.ResourceStatus.Manifests})
			if err != nil {
				t.Fatal(err)
			}
			want := compactFile(t, filepath.Join(fixtures.Payloads(t), tc.file))
			if !bytes.Equal(got, want) {
				t.Fatalf("status data differs from %s:\n got %d bytes %s\nwant %d bytes %s", tc.file, len(got), got, len(want), want)
			}
		})
	}
}
