package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/sim"
)

func TestRecordUsage(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"record", "--source-listen", "127.0.0.1:0", "--source-upstream", "127.0.0.1:1"}, 2, "--out is required"},
		{[]string{"record", "--out", t.TempDir() + "/r", "--source-listen", "127.0.0.1:0"}, 1, "go together"},
		{[]string{"record", "--out", t.TempDir() + "/r"}, 1, "nothing to record"},
		{[]string{"record", "--out", full, "--source-listen", "127.0.0.1:0", "--source-upstream", "127.0.0.1:1"}, 1, "not empty"},
		{[]string{"record", "--out", t.TempDir() + "/r", "--seal-every", "0s", "--source-listen", "127.0.0.1:0", "--source-upstream", "127.0.0.1:1"}, 2, "seal-every"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestRecordForDuration records an idle sim for a moment: the folder is a
// trace verify accepts and the summary is printed.
func TestRecordForDuration(t *testing.T) {
	s, err := sim.Start(context.Background(), sim.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := filepath.Join(t.TempDir(), "rec")
	code, stdout, stderr := runCLI(t, "record", "--out", out, "--duration", "200ms", "--seal-every", "50ms",
		"--source-listen", "127.0.0.1:0", "--source-upstream", s.SourceAddr(),
		"--broker-listen", "127.0.0.1:0", "--broker-upstream", s.BrokerAddr(), "--metrics-listen", "127.0.0.1:0")
	if code != 0 || !strings.Contains(stdout, "recorded "+out) || !strings.Contains(stdout, "digest") {
		t.Fatalf("record: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if err := format.Verify(out); err != nil {
		t.Fatal(err)
	}
}
