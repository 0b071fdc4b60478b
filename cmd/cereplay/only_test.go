package main

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/replay"
)

// Two replayer processes (this test binary, re-executed as cereplay)
// share one trace against one sim: one plays only the agents, the other,
// started once the agents are subscribed, only the source. Each accounts
// for every record of the trace: what it played is sent or delivered,
// what the other side plays is set apart, and nothing is missing.
func TestOnlySourceAndOnlyAgents(t *testing.T) {
	runIfChild()
	s, trace := simAndTrace(t, 5, 4)
	man, err := format.ReadManifest(trace)
	if err != nil {
		t.Fatal(err)
	}
	child := func(args ...string) *exec.Cmd { return childCommand("TestOnlySourceAndOnlyAgents", args...) }
	common := []string{"--create-consumers", "--settle", "10s", "--interval", "100ms",
		"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL()}
	agentsDir, sourceDir := filepath.Join(t.TempDir(), "agents"), filepath.Join(t.TempDir(), "source")

	agents := child(append(append([]string{"replay", "--only", "agents", "--speed", "20", "--out", agentsDir}, common...), trace)...)
	stderr, err := agents.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var agentsOut strings.Builder
	agents.Stdout = &agentsOut
	if err := agents.Start(); err != nil {
		t.Fatal(err)
	}
	// The agents' notes say when every stream is subscribed ("playing").
	var notes strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "replay: playing") {
		notes.WriteString(sc.Text() + "\n")
	}
	go io.Copy(&notes, stderr) //nolint:errcheck // the notes are for the failure message only

	srcOut, srcErr := child(append(append([]string{"replay", "--only", "source", "--rate", "100", "--quiet", "--out", sourceDir}, common...), trace)...).CombinedOutput()
	agentsErr := agents.Wait()
	if srcErr != nil || agentsErr != nil {
		t.Fatalf("source: %v\n%s\nagents: %v\n%s%s", srcErr, srcOut, agentsErr, agentsOut.String(), notes.String())
	}

	flows := man.CountsByFlow
	n := func(f format.Flow) int64 { return flows[f.String()] }
	other := "skipped"
	for _, c := range []struct {
		dir  string
		only replay.Side
		want map[format.Flow]string
	}{
		{sourceDir, replay.SideSource, map[format.Flow]string{
			format.FlowSourceSubscribe: "sent", format.FlowSourceToServer: "sent", format.FlowServerToSource: "delivered",
			format.FlowAgentToServer: "delivered", format.FlowAgentSubscribe: other, format.FlowServerToAgent: other,
		}},
		{agentsDir, replay.SideAgents, map[format.Flow]string{
			format.FlowAgentSubscribe: "sent", format.FlowSourceToServer: "delivered", format.FlowServerToAgent: "delivered",
			format.FlowAgentToServer: "sent", format.FlowSourceSubscribe: other, format.FlowServerToSource: other,
		}},
	} {
		sum, err := replay.ReadSummary(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if !sum.OK || sum.Only != string(c.only) || len(sum.NotChecked) == 0 || sum.Records != man.Records {
			t.Errorf("--only %s: ok %v, only %q, not checked %q, %d of %d records; problems %q",
				c.only, sum.OK, sum.Only, sum.NotChecked, sum.Records, man.Records, sum.Problems)
		}
		for f, status := range c.want {
			if got := sum.ByFlow[f.String()]; got[status] != n(f) || len(got) != 1 && n(f) > 0 {
				t.Errorf("--only %s: %s outcomes %v, want %s %d", c.only, f, got, status, n(f))
			}
		}
	}
}
