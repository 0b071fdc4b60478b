package replay

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/testnet"
	"github.com/cereplay/cereplay/sim"
)

// Against addresses where nothing listens the run stops after the connect
// phase (and its --connect-timeout), names each address and the cause,
// sends nothing and accounts for every record.
func TestReplayNothingListening(t *testing.T) {
	t.Parallel()
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 3}.write(t, trace)
	src, broker := testnet.DeadAddr(t), testnet.DeadAddr(t)
	cfg := Config{Trace: trace, Out: out, SourceAddrs: []string{src}, BrokerAddrs: []string{broker},
		Max: true, ConnectTimeout: 300 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Summary
	problems := strings.Join(sum.Problems, "\n")
	if res.OK() || !strings.Contains(problems, "could not subscribe within 300ms") {
		t.Fatalf("ok %v, problems %q", res.OK(), problems)
	}
	for _, want := range []string{src + " (1 source stream)", broker + " (2 agent streams)", "connection refused"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems %q do not say %q", problems, want)
		}
	}
	if sum.SpecsSent != 0 || sum.StatusesSent != 0 {
		t.Errorf("sent %d specs and %d statuses to nothing", sum.SpecsSent, sum.StatusesSent)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %v to give up", took)
	}
	outs := checkAccounting(t, trace, out)
	for i, o := range outs {
		if f := o[0].Flow; !f.Subscribe() && (o[0].Outcome.Status != format.OutcomeNotSent || o[0].Outcome.Note != "not sent: could not subscribe") {
			t.Errorf("record %d (%s): outcome %+v, want not sent", i, f, o[0].Outcome)
		}
	}
}

// A target that goes away mid-run and stays away past --give-up-after
// stops the run: the rest is accounted as not sent, and the summary says
// why.
func TestReplayGivesUpOnDeadTarget(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 40}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.Rate, cfg.GiveUpAfter = true, 20, 300*time.Millisecond
	// sim goes away once it has received a few events.
	finished := make(chan struct{})
	var closed sync.WaitGroup
	closed.Add(1)
	go func() {
		defer closed.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for simReceived(s) < 3 {
			select {
			case <-finished:
				return
			case <-t.C:
			}
		}
		s.Close()
	}()
	var log bytes.Buffer
	cfg.Log = &logWriter{b: &log}
	res, err := Run(context.Background(), cfg)
	close(finished)
	closed.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Summary
	problems := strings.Join(sum.Problems, "\n")
	if res.OK() || !strings.Contains(problems, "gave up on the target: down for 300ms (--give-up-after): ") ||
		!strings.Contains(problems, s.BrokerAddr()) && !strings.Contains(problems, s.SourceAddr()) || !strings.Contains(problems, "the rest of the trace was not sent") {
		t.Fatalf("ok %v, problems %q\nlog:\n%s", res.OK(), problems, log.String())
	}
	if sum.SpecsSent == 0 || sum.SpecsSent >= 80 {
		t.Errorf("%d specs sent, want some but not all 80", sum.SpecsSent)
	}
	outs := checkAccounting(t, trace, out)
	notSent := 0
	for _, o := range outs {
		if o[0].Outcome.Note == "not sent: gave up on the target" {
			notSent++
		}
	}
	if notSent == 0 {
		t.Errorf("no record accounted as not sent after giving up: %v", sum.Outcomes)
	}
}

// simReceived is how many events sim has received (Publish calls it took).
func simReceived(s *sim.Server) float64 {
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		return 0
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "sim_events_received_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// The count of streams down follows every stream's state, so the watch
// skips its look at each stream exactly when none is down.
func TestStreamsDownCount(t *testing.T) {
	r := &runner{}
	a, b := r.newStreamHealth("agent c1", "x:1"), r.newStreamHealth("source s", "x:2")
	if n := r.streamsDownNow.Load(); n != 2 {
		t.Fatalf("two new streams: %d down, want 2", n)
	}
	a.setUp()
	a.setUp() // twice: counted once
	b.setUp()
	if n := r.streamsDownNow.Load(); n != 0 {
		t.Fatalf("both up: %d down, want 0", n)
	}
	if got := r.streamsDown(0, true); got != "" {
		t.Fatalf("both up: streamsDown = %q", got)
	}
	b.setDown(errors.New("gone"))
	b.setDown(errors.New("still gone"))
	if n := r.streamsDownNow.Load(); n != 1 {
		t.Fatalf("one down: %d down, want 1", n)
	}
	if got := r.streamsDown(0, true); !strings.Contains(got, "x:2") || !strings.Contains(got, "still gone") {
		t.Fatalf("one down: streamsDown = %q, want the source at x:2 and its error", got)
	}
}
