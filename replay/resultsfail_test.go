package replay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/report/timeline"
)

// Results that cannot be written fail the run, in one line naming the
// file, and the summary does not say OK: a full disk is played by
// /dev/full in place of the file's temporary copy.
func TestReplayResultsNotWritten(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 2}.write(t, trace)
	for _, file := range []string{RunFile, SummaryFile, timeline.HistogramsFile} {
		t.Run(file, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/dev/full", filepath.Join(out, file+".tmp")); err != nil {
				t.Fatal(err)
			}
			cfg := baseConfig(s, trace, out)
			cfg.Max, cfg.CreateConsumers, cfg.RunID = true, true, strings.TrimSuffix(file, ".json")
			res, err := Run(context.Background(), cfg)
			path := filepath.Join(out, file)
			if err == nil || !strings.Contains(err.Error(), "results not written: "+path+": no space left on device") ||
				strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line naming %s", err, path)
			}
			if res == nil || res.OK() || !strings.HasPrefix(res.Summary.Problems[0], "results not written: "+path) {
				t.Fatalf("result %+v: want a failed run whose first problem names %s", res, path)
			}
			var text bytes.Buffer
			_ = res.Summary.WriteText(&text)
			if strings.Contains(text.String(), "replay OK") || !strings.Contains(text.String(), "replay FAILED") {
				t.Errorf("text summary:\n%s", text.String())
			}
			if _, err := os.Lstat(filepath.Join(out, file+".tmp")); err == nil {
				t.Errorf("%s.tmp left behind", file)
			}
		})
	}
}

// summary.json keeps names as they are: flows such as agent>server are
// not HTML-escaped.
func TestWriteJSONNoHTMLEscape(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), SummaryFile)
	if err := WriteJSON(path, &Summary{ByFlow: map[string]map[string]int64{"agent>server": {"sent": 1}}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"agent>server"`)) || bytes.Contains(b, []byte(`\u003e`)) {
		t.Fatalf("summary.json escapes HTML:\n%s", b)
	}
}
