package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/replay"
)

// A replay confined to one CPU (taskset) runs with two Go processors when
// paced, so the pacer does not wait behind the streams for the only one,
// and with one at --max, where there is no schedule to keep; GOMAXPROCS
// set by the user wins. run.json says which.
func TestPacedReplayOnOneCPUHasTwoProcessors(t *testing.T) {
	runIfChild()
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (util-linux) not installed")
	}
	s, trace := simAndTrace(t, 2, 2)
	for _, c := range []struct {
		name, env string
		timing    []string
		want      string
	}{
		{"paced", "", []string{"--rate", "200", "--late-warn", "1h"}, "2"},
		{"max", "", []string{"--max"}, "1"},
		{"paced, GOMAXPROCS=1 set", "GOMAXPROCS=1", []string{"--rate", "200", "--late-warn", "1h"}, "1"},
	} {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"replay", "--quiet", "--create-consumers", "--run-id", "procs-" + c.timing[0] + c.env, "--out", out,
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL()}, c.timing...)
		child := childCommand("TestPacedReplayOnOneCPUHasTwoProcessors", append(args, trace)...)
		cmd := exec.Command(taskset, append([]string{"-c", "0"}, child.Args...)...)
		cmd.Env = child.Env
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		settings := runSettings(t, c.name, cmd, out)
		if got := settings["gomaxprocs"]; got != c.want {
			t.Errorf("%s on one CPU: run.json gomaxprocs = %q, want %q", c.name, got, c.want)
		}
	}
}

// The replayer's collector runs under its memory limit at --gc-percent
// (400) unless GOGC is set, and at the runtime's 100 without a limit,
// where a higher GOGC would let the heap grow five-fold; run.json says
// what the run had.
func TestReplayCollectorSettings(t *testing.T) {
	runIfChild()
	s, trace := simAndTrace(t, 2, 2)
	for _, c := range []struct {
		name, env         string
		flags             []string
		wantGOGC, wantLim string
	}{
		{"default", "", nil, "400", "464 MiB"},
		{"--gc-percent 250", "", []string{"--gc-percent", "250"}, "250", "464 MiB"},
		{"GOGC=150 set", "GOGC=150", nil, "150", "464 MiB"},
		{"no limit", "", []string{"--memory-limit-mib", "0"}, "100", "none"},
		{"GOMEMLIMIT set", "GOMEMLIMIT=300MiB", []string{"--memory-limit-mib", "0"}, "400", "300 MiB"},
	} {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"replay", "--quiet", "--max", "--create-consumers", "--run-id", "gc-" + c.name, "--out", out,
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL()}, c.flags...)
		cmd := childCommand("TestReplayCollectorSettings", append(args, trace)...)
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool {
			return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") // the test's own
		})
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		settings := runSettings(t, c.name, cmd, out)
		if got := settings["gogc"]; got != c.wantGOGC {
			t.Errorf("%s: run.json gogc = %q, want %q", c.name, got, c.wantGOGC)
		}
		if got := settings["memory_limit"]; got != c.wantLim {
			t.Errorf("%s: run.json memory_limit = %q, want %q", c.name, got, c.wantLim)
		}
	}
}

// runSettings runs a child replay writing its results to out and returns
// the settings its run.json records.
func runSettings(t *testing.T, name string, cmd *exec.Cmd, out string) map[string]string {
	t.Helper()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info replay.RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info.Settings
}
