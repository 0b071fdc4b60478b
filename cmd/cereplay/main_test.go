package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runCLI runs the app in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"cereplay"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// runIfChild makes this test binary cereplay in a child started by
// childCommand: it runs the command line after "--" and exits. A test that
// starts children calls it first; in the parent it returns.
func runIfChild() {
	if os.Getenv("CEREPLAY_TEST_CHILD") == "1" {
		os.Exit(run(append([]string{"cereplay"}, flag.Args()...), os.Stdout, os.Stderr))
	}
}

// childCommand runs `cereplay args...` in a separate process: this test
// binary again, running only test, which calls runIfChild.
func childCommand(test string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^" + test + "$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "CEREPLAY_TEST_CHILD=1")
	return cmd
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "cereplay ") || !strings.Contains(out, "commit") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"inspect", "--nope", "x"}, 2, "flag provided but not defined"},
		{"missing argument", []string{"inspect"}, 2, "missing TRACE argument"},
		{"two arguments", []string{"verify", "a", "b"}, 2, "takes one TRACE argument"},
		{"missing trace", []string{"inspect", "/nonexistent/trace"}, 1, "/nonexistent/trace"},
		{"bad flow", []string{"cat", "--flow", "sideways", "x"}, 2, "--flow"},
		{"negative limit", []string{"cat", "--limit", "-1", "x"}, 2, "--limit"},
		{"replay speed out of range", []string{"replay", "--speed", "0", "x"}, 2, "--speed 0: out of range"},
		{"replay negative settle", []string{"replay", "--settle", "-1s", "x"}, 2, "--settle -1s: out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.HasPrefix(stderr, "cereplay: ") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 &&
				!strings.Contains(stderr, "Usage") && !strings.Contains(stderr, "USAGE") {
				t.Errorf("stderr is not one clear line: %q", stderr)
			}
			if !strings.Contains(stderr, tc.err) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.err)
			}
		})
	}
}

func TestEveryFlagHasEnvVar(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		for _, f := range c.Flags {
			name := f.Names()[0]
			want := "CEREPLAY_" + envName(c.Name) + "_" + envName(name)
			help := f.String()
			if !strings.Contains(help, want) {
				t.Errorf("%s --%s: help %q does not name %s", c.Name, name, help, want)
			}
		}
	}
}

func TestEnvVarSetsFlag(t *testing.T) {
	t.Setenv("CEREPLAY_CAT_FLOW", "sideways")
	code, _, stderr := runCLI(t, "cat", "x")
	if code != 2 || !strings.Contains(stderr, "sideways") {
		t.Fatalf("CEREPLAY_CAT_FLOW was not applied: code %d, stderr %q", code, stderr)
	}
}

func TestEveryCommandHasExamples(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		if c.Hidden || c.Name == "version" {
			continue
		}
		if !strings.Contains(c.UsageText, "Example") && !strings.Contains(c.Description, "Example") {
			t.Errorf("%s --help has no examples", c.Name)
		}
	}
}
