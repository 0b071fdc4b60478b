package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// generatedTrace makes a small trace with the generate command itself.
func generatedTrace(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "trace")
	if code, _, stderr := runCLI(t, "generate", "--out", dir, "--clusters", "2", "--works-per-cluster", "1", "-q"); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	return dir
}

func TestFlagsAfterArguments(t *testing.T) {
	dir := generatedTrace(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		lines  int    // lines on stdout, -1: any
		stdout string // on stdout, when code is 0
		stderr string // on stderr, when code is not 0
	}{
		{"inspect --json after TRACE", []string{"inspect", dir, "--json"}, 0, -1, `"digest": "sha256:`, ""},
		{"cat --limit after TRACE", []string{"cat", dir, "--limit", "3"}, 0, 3, `"index":2`, ""},
		{"cat --limit=N and a bool after TRACE", []string{"cat", dir, "--limit=2", "--data"}, 0, 2, `"subscription":`, ""},
		{"cat flags on both sides", []string{"cat", "--flow", "agent-subscribe", dir, "--limit", "1"}, 0, 1, `"flow":"agent-subscribe"`, ""},
		{"verify", []string{"verify", dir}, 0, 1, "ok " + dir, ""},
		{"--help after TRACE", []string{"inspect", dir, "--help"}, 0, -1, "cereplay inspect TRACE", ""},
		{"replay parses flags after TRACE", []string{"replay", dir, "--speed", "0"}, 2, 0, "", "--speed 0: out of range"},
		{"replay --max after TRACE meets --speed before", []string{"replay", "--speed", "2", dir, "--max"}, 2, 0, "", "exclude each other"},
		{"-- ends the flags", []string{"inspect", "--", "--json"}, 1, 0, "", "--json"},
		{"a flag without its value", []string{"cat", dir, "--limit"}, 2, 0, "", "cat: flag --limit needs a value"},
		{"a flag whose value would be --", []string{"cat", dir, "--limit", "--", "x"}, 2, 0, "", "--limit needs a value"},
		{"an unknown flag after TRACE", []string{"inspect", dir, "--nope"}, 2, 0, "", "flag provided but not defined: --nope"},
		{"two arguments around a flag", []string{"verify", dir, "--help=false", dir}, 2, 0, "", "takes one TRACE argument, got 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.lines >= 0 && strings.Count(stdout, "\n") != tc.lines {
				t.Errorf("%d lines on stdout, want %d:\n%s", strings.Count(stdout, "\n"), tc.lines, stdout)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
		})
	}
}

func TestFlagsFirst(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	tests := []struct{ in, want string }{
		{"cereplay inspect T --json", "cereplay inspect --json -- T"},
		{"cereplay generate --out D -q --clusters 3", "cereplay generate --out D -q --clusters 3"},
		{"cereplay cat T --flow=x --limit -1 --data", "cereplay cat --flow=x --limit -1 --data -- T"},
		{"cereplay cat T -- --limit 3", "cereplay cat -- T --limit 3"},
		{"cereplay cat - --limit 3", "cereplay cat --limit 3 -- -"},
		{"cereplay replay T --max --rate 5", "cereplay replay --max --rate 5 -- T"},
		{"cereplay inspect T -h", "cereplay inspect -h"},
		{"cereplay nosuch T --json", "cereplay nosuch T --json"},
		{"cereplay --help", "cereplay --help"},
	}
	for _, tc := range tests {
		got, err := flagsFirst(app, strings.Fields(tc.in))
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("flagsFirst(%s) = %q, %v; want %q", tc.in, strings.Join(got, " "), err, tc.want)
		}
	}
}

// TestUsageErrorsAreOneLine checks every command: an unknown flag and a
// value that does not parse, on the command line or in the environment,
// give exit 2 and one line on stderr, nothing on stdout.
func TestUsageErrorsAreOneLine(t *testing.T) {
	check := func(t *testing.T, want string, args ...string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, args...)
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q; want exit 2, no stdout, one line naming %q",
				args, code, len(stdout), stderr, want)
		}
	}
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		t.Run(c.Name, func(t *testing.T) {
			check(t, c.Name+": flag provided but not defined: --no-such-flag", c.Name, "--no-such-flag", "x")
			for _, f := range c.Flags {
				name := f.Names()[0]
				switch f.(type) {
				case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Float64Flag, *cli.DurationFlag, *cli.BoolFlag:
				default:
					continue // any string parses
				}
				check(t, "--"+name, c.Name, "--"+name+"=not-a-value", "x")
				env := "CEREPLAY_" + envName(c.Name) + "_" + envName(name)
				t.Setenv(env, "not-a-value")
				check(t, env, c.Name, "x")
				t.Setenv(env, "")
			}
		})
	}
}

// A required flag or argument left out is a usage error naming the
// command and the flag, with the help to read, as for every command
// (merge and pack said only 'Required flag "out" not set').
func TestMissingRequiredNamesCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"merge", "runs/a"}, "cereplay: merge: --out DIR is required (see 'cereplay merge --help')\n"},
		{[]string{"pack", "traces/tiny"}, "cereplay: pack: --out FILE is required (see 'cereplay pack --help')\n"},
		{[]string{"compare", "runs/a"}, "cereplay: compare: takes BASE and NEW run folders, got 1 argument (see"},
	} {
		code, stdout, stderr := runCLI(t, tc.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

// A trace that cannot be opened is named with the command that tried, as
// verify and pack name it.
func TestTraceErrorNamesCommand(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexist")
	for _, cmd := range []string{"cat", "inspect", "verify", "pack"} {
		code, _, stderr := runCLI(t, cmd, missing, "--out", filepath.Join(t.TempDir(), "p.crp"))
		if cmd != "pack" {
			code, _, stderr = runCLI(t, cmd, missing)
		}
		if want := "cereplay: " + cmd + " " + missing + ": "; code != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("%s of a missing trace: exit %d, stderr %q; want exit 1 and %q first", cmd, code, stderr, want)
		}
	}
}

func TestHelpCommand(t *testing.T) {
	code, stdout, stderr := runCLI(t, "help", "replay")
	if code != 0 || !strings.Contains(stdout, "cereplay replay TRACE") || stderr != "" {
		t.Errorf("help replay: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	code, stdout, _ = runCLI(t, "help")
	if code != 0 || !strings.Contains(stdout, "COMMANDS") {
		t.Errorf("help: exit %d, stdout:\n%s", code, stdout)
	}
	code, stdout, stderr = runCLI(t, "help", "frobnicate")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `help: unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestInspectFitsTerminal: no line of inspect is wider than 80 columns,
// with long cluster names and a long path, and the digest stays whole.
func TestInspectFitsTerminal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("a-long-folder-name/", 5), "trace")
	prefix := strings.Repeat("c", 55) + "-"
	if code, _, stderr := runCLI(t, "generate", "--out", dir, "--clusters", "3", "--works-per-cluster", "1",
		"--cluster-prefix", prefix, "--status-updates", "2", "-q"); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	code, out, stderr := runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	m, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
	for _, want := range []string{"digest   " + m.Digest + "\n", "  type status.update_request  ", prefix + "3", "works-per-cluster  1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
}

// A recording's facts (its tool and version, its command, the upstreams
// it came from) fit the terminal too: the digest stays whole beside them,
// the tool's version is not run into its command line, and one segment is
// not "1 segments".
func TestInspectRecordingFacts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	w, err := format.Create(dir, format.WriterOptions{Provenance: format.Provenance{Tool: "cereplay record", Version: "v1.2.3",
		Command:   "cereplay record --out rec --source-upstream maestro:8090 --broker-upstream maestro:8091",
		Upstreams: []string{"maestro:8090", "maestro:8091"}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := proto.Marshal(maestro.AgentSubscription("maestro-cluster-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&format.Record{Type: format.TypeEvent, Flow: format.FlowAgentSubscribe, Actor: "maestro-cluster-1", Data: sub}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{" " + m.Digest + "\n", "made by  cereplay record, version v1.2.3\n",
		"command  cereplay record --out rec", "from     maestro:8090, maestro:8091\n", "1 in 1 segment\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		s     string
		width int
		want  []string
	}{
		{"", 10, []string{""}},
		{"a bb ccc", 4, []string{"a bb", "ccc"}},
		{"a  bb", 10, []string{"a bb"}},
		{"abcdefghij k", 4, []string{"abcd", "efgh", "ij k"}},
		{"x abcdefgh", 4, []string{"x", "abcd", "efgh"}},
		{"ééééé", 2, []string{"éé", "éé", "é"}},
	}
	for _, tc := range tests {
		if got := wrap(tc.s, tc.width); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.s, tc.width, got, tc.want)
		}
	}
}
