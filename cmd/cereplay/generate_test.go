package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
)

func TestGenerateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	code, out, stderr := runCLI(t, "generate", "--out", dir, "--clusters", "4", "--works-per-cluster", "3",
		"--status-updates", "2", "--order", "round-robin", "--apply-delay", "uniform:min=100ms,max=200ms", "--seed", "9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr is not a terminal, yet got output: %q", stderr)
	}
	m, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Records != 1+4+12*3 {
		t.Fatalf("%d records", m.Records)
	}
	if !strings.HasPrefix(out, "generated "+dir+": 41 records") || strings.Count(out, "\n") != 1 || !strings.Contains(out, m.Digest) {
		t.Fatalf("summary %q: want one line with the count and digest %s", out, m.Digest)
	}
	p := m.Provenance.Params
	if p["order"] != "round-robin" || p["seed"] != "9" || p["apply-delay"] != "uniform:min=100ms,max=200ms" || p["status-updates"] != "2" {
		t.Fatalf("manifest params %v do not record the flags", p)
	}
}

func TestGenerateEnvVar(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	t.Setenv("CEREPLAY_GENERATE_CLUSTERS", "2")
	t.Setenv("CEREPLAY_GENERATE_WORKS_PER_CLUSTER", "1")
	if code, _, stderr := runCLI(t, "generate", "--out", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Provenance.Params["clusters"] != "2" || m.Records != 1+2+2*2 {
		t.Fatalf("env vars not applied: %v, %d records", m.Provenance.Params, m.Records)
	}
}

func TestGenerateUsageErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"generate"}, 2, "out"},
		{[]string{"generate", out}, 2, "--out"},
		{[]string{"generate", "--out", out, "--order", "random"}, 2, "--order"},
		{[]string{"generate", "--out", out, "--status", "sometimes"}, 2, "--status"},
		{[]string{"generate", "--out", out, "--apply-delay", "soon"}, 2, "--apply-delay"},
		{[]string{"generate", "--out", out, "--clusters", "0"}, 2, "--clusters"},
		{[]string{"generate", "--out", out, "--status", "scale-test", "--status-updates", "2"}, 2, "--status-updates"},
		{[]string{"generate", "--out", out, "--rate", "-1"}, 2, "--rate"},
		{[]string{"generate", "--out", out, "--start-time", "yesterday"}, 2, "--start-time"},
		{[]string{"generate", "--out", out, "--clusters", "many"}, 2, "clusters"},
		{[]string{"generate", "--out", out, "--workers", "-1"}, 2, "--workers must be at least 1, got -1"},
		{[]string{"generate", "--out", out, "--workers", "0"}, 2, "--workers must be at least 1, got 0"},
		{[]string{"generate", "--out", out, "--workers", "3000000"}, 2, "--workers: 3000000 is outside 1.."},
		{[]string{"generate", "--out", "/proc/cereplay-cannot-write", "--clusters", "1", "--works-per-cluster", "1"}, 1, "cereplay-cannot-write"},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q in one line", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestLevelsDocumented: README and FORMAT.md say which zstd level the
// format's Writer and generate use by default, as the code does.
func TestLevelsDocumented(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(string(b)), " ")
	}
	readme, spec := read("../../README.md"), read("../../format/FORMAT.md")
	gen := fmt.Sprintf("`cereplay generate` writes level %d unless given `--level`", generate.DefaultLevel)
	writer := fmt.Sprintf("zstd level %d", format.DefaultLevel)
	for _, c := range []struct{ doc, name, want string }{
		{readme, "README.md", gen},
		{readme, "README.md", "compressed at " + writer + ", the format's default"},
		{spec, "FORMAT.md", gen},
		{spec, "FORMAT.md", writer + " (klauspost/compress `SpeedDefault`) is the Writer's default"},
	} {
		if !strings.Contains(c.doc, c.want) {
			t.Errorf("%s does not say %q", c.name, c.want)
		}
	}
	if code, out, _ := runCLI(t, "generate", "--help"); code != 0 || !strings.Contains(out, fmt.Sprintf("(default: %d)", generate.DefaultLevel)) {
		t.Errorf("generate --help does not give --level's default %d", generate.DefaultLevel)
	}
}
