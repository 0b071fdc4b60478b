package main

import (
	"compress/gzip"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/internal/testpki"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/sim"
)

func TestReplayUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"no trace", []string{"replay"}, "missing TRACE"},
		{"two modes", []string{"replay", "--max", "--rate", "10", "t"}, "exclude each other"},
		{"zero speed", []string{"replay", "--speed", "0", "t"}, "--speed"},
		{"negative rate", []string{"replay", "--rate", "-1", "t"}, "--rate"},
		{"bad start-at", []string{"replay", "--start-at", "tomorrow", "t"}, "--start-at"},
		{"start-at in the past", []string{"replay", "--start-at", "2020-01-01T00:00:00Z", "t"}, "--start-at 2020-01-01T00:00:00Z is"},
		{"reconnect min above max", []string{"replay", "--reconnect-min", "1m", "--reconnect-max", "10s", "t"}, "--reconnect-min 1m0s is greater than --reconnect-max 10s"},
		{"bad shard", []string{"replay", "--shard", "3/2", "t"}, "--shard"},
		{"cert without key", []string{"replay", "--cert-file", "c.pem", "t"}, "--key-file"},
		{"token without tls", []string{"replay", "--token-file", "tok", "t"}, "clear text"},
		{"negative inflight", []string{"replay", "--max-inflight", "-1", "t"}, "--max-inflight"},
		{"zero late-warn", []string{"replay", "--late-warn", "0", "t"}, "--late-warn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.err)
			}
		})
	}
}

func TestReplayMissingTrace(t *testing.T) {
	code, _, stderr := runCLI(t, "replay", "--out", filepath.Join(t.TempDir(), "run"), "/nonexistent/trace")
	if code != 1 || !strings.Contains(stderr, "/nonexistent/trace") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// simAndTrace starts a sim and generates a trace of clusters × works for
// it, its works created at 100 per second with no pauses; mutate changes
// the sim's loopback configuration.
func simAndTrace(t *testing.T, clusters, works int, mutate ...func(*sim.Config)) (*sim.Server, string) {
	t.Helper()
	c := sim.LoopbackConfig()
	for _, m := range mutate {
		m(&c)
	}
	s, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	trace := filepath.Join(t.TempDir(), "trace")
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = clusters, works, 100
	p.SubscribePause, p.CreateAfter = 0, 0
	if _, err := generate.Generate(context.Background(), trace, p, nil); err != nil {
		t.Fatal(err)
	}
	return s, trace
}

// The command end to end: a generated trace replayed at --max into sim,
// consumers created through REST, summary on stdout, results on disk;
// a second run with the same ids fails (exit 1) and names the duplicates.
func TestReplayCommandAgainstSim(t *testing.T) {
	s, trace := simAndTrace(t, 4, 3)
	args := func(out string) []string {
		return []string{"replay", "--max", "--create-consumers", "--quiet", "--settle", "5s",
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(),
			"--out", out, trace}
	}
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runCLI(t, args(out)...)
	if code != 0 || !strings.Contains(stdout, "replay OK") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	sum, err := replay.ReadSummary(out)
	if err != nil || sum.SpecsSent != 12 || sum.StatusesSent != 12 || sum.Outcomes["delivered"] != 24 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	for _, f := range []string{replay.RunFile, replay.SummaryFile, replay.OutcomesDir + "/manifest.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	// The outcomes are a trace folder that inspect and cat read.
	if code, stdout, stderr := runCLI(t, "cat", filepath.Join(out, replay.OutcomesDir)); code != 0 || !strings.Contains(stdout, "delivered") {
		t.Errorf("cat outcomes: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, args(filepath.Join(t.TempDir(), "again"))...)
	if code != 1 || !strings.Contains(stdout, "duplicates: 12") || !strings.Contains(stderr, "--run-id") {
		t.Fatalf("replaying the same ids: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Paced, the summary judges the schedule against --late-warn (an hour:
	// kept on any machine) and run.json records the bound.
	paced := args(filepath.Join(t.TempDir(), "paced"))
	paced = append([]string{"replay", "--rate", "200", "--late-warn", "1h", "--run-id", "paced"}, paced[2:]...)
	code, stdout, stderr = runCLI(t, paced...)
	if code != 0 || !strings.Contains(stdout, "schedule kept: 12 of 12 sends (100.0%) left within 1h0m0s") {
		t.Fatalf("paced: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// The command over TLS with a bearer token: the right token replays, a
// wrong one fails with exit 1 and one line on stderr naming the addresses
// and the refusal; the token is printed in neither case.
func TestReplayCommandTLSToken(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	const token = "tok-8c2e41-must-not-be-printed"
	s, trace := simAndTrace(t, 2, 2, func(c *sim.Config) {
		c.SourceTLS = sim.TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile}
		c.BrokerTLS, c.BearerToken = c.SourceTLS, token
	})
	for i := 1; i <= 2; i++ {
		if err := s.CreateConsumer(fmt.Sprintf("maestro-cluster-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "token"), filepath.Join(dir, "wrong-token")
	if err := os.WriteFile(good, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-"+token), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(tokenFile, runID string) []string {
		return []string{"replay", "--max", "--settle", "5s", "--connect-timeout", "2s", "--run-id", runID,
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--ca-file", ca.File, "--token-file", tokenFile,
			"--out", filepath.Join(t.TempDir(), "run"), trace}
	}
	code, stdout, stderr := runCLI(t, args(good, "good")...)
	if code != 0 || !strings.Contains(stdout, "replay OK") || strings.Contains(stdout+stderr, token) {
		t.Fatalf("right token: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, args(bad, "bad")...)
	// The progress notes come first; the error is the last line.
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "cereplay: replay: could not subscribe") || !strings.Contains(last, s.SourceAddr()) ||
		!strings.Contains(last, s.BrokerAddr()) || !strings.Contains(last, "missing or wrong bearer token") {
		t.Fatalf("wrong token: exit %d, want 1 and a line naming both addresses and the refusal\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "connected in") || !strings.Contains(stderr, "0 of 3 streams subscribed") {
		t.Errorf("the notes say it connected:\n%s", stderr)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Fatalf("the token is printed:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// Without --out a replay writes runs/<UTC second>; when a run of the same
// second already holds that folder (a script's back-to-back short runs),
// it takes the name with -2 instead of failing on the other run's results.
func TestReplayDefaultOutTaken(t *testing.T) {
	s, trace := simAndTrace(t, 2, 1)
	t.Chdir(t.TempDir())
	// The folders of the next seconds are all taken, whenever the replay starts.
	now := time.Now()
	for i := range 30 {
		dir := filepath.Join("runs", now.Add(time.Duration(i)*time.Second).UTC().Format("20060102T150405Z"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, replay.RunFile), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, "replay", "--max", "--create-consumers", "--quiet",
		"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(), trace)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s%s", code, out, stderr)
	}
	runs, err := filepath.Glob(filepath.Join("runs", "*-2", replay.SummaryFile))
	if err != nil || len(runs) != 1 {
		t.Fatalf("summaries in runs/*-2: %v (err %v); output:\n%s", runs, err, out)
	}
}

func TestOutDir(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	if got := outDir("mine", root, now); got != "mine" {
		t.Errorf("--out mine gave %s", got)
	}
	first := filepath.Join(root, "20261206T070000Z")
	if got := outDir("", root, now); got != first {
		t.Errorf("free: %s, want %s", got, first)
	}
	for _, taken := range []string{first, first + "-2"} {
		if err := os.Mkdir(taken, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := outDir("", root, now); got != first+"-3" {
		t.Errorf("two taken: %s, want %s-3", got, first)
	}
}

// --cpuprofile writes a gzip-compressed profile of the run (what go tool
// pprof reads); a file that cannot be created fails before anything is
// sent, naming the flag.
func TestReplayCPUProfile(t *testing.T) {
	s, trace := simAndTrace(t, 2, 2)
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	args := func(out, prof string) []string {
		return []string{"replay", "--max", "--create-consumers", "--quiet", "--cpuprofile", prof,
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(),
			"--out", out, trace}
	}
	if code, stdout, stderr := runCLI(t, args(filepath.Join(dir, "run"), prof)...); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	f, err := os.Open(prof)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("profile is not gzip-compressed: %v", err)
	}
	if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
		t.Fatalf("profile: %d bytes, %v", len(b), err)
	}
	code, _, stderr := runCLI(t, args(filepath.Join(dir, "run2"), filepath.Join(dir, "no", "such", "cpu.pprof"))...)
	if code != 1 || !strings.Contains(stderr, "--cpuprofile") {
		t.Fatalf("unwritable profile: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "run2")); err == nil {
		t.Fatal("a run whose profile could not be written left a results folder")
	}
}
