package diff

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/record"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/sim"
)

// A trace against the recording of its replay (with a run id, through the
// recorder, into sim): once the run's id remap is undone, no record the
// sources and agents published differs or is missing, and what is only in
// the recording is what the server delivered, and the outcome of each
// call, which a generated trace does not hold.
func TestDiffAgainstRecordingOfReplay(t *testing.T) {
	t.Parallel()
	orig := smallTrace(t)
	s, err := sim.Start(context.Background(), sim.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	recorded := filepath.Join(t.TempDir(), "rec")
	rec, err := record.Start(context.Background(), record.Config{
		Out:          recorded,
		SourceListen: "127.0.0.1:0", SourceUpstream: s.SourceAddr(),
		BrokerListen: "127.0.0.1:0", BrokerUpstream: s.BrokerAddr(),
		SealEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	run := filepath.Join(t.TempDir(), "run")
	res, err := replay.Run(context.Background(), replay.Config{
		Trace: orig, Out: run, RunID: "run-2",
		SourceAddrs: []string{rec.SourceAddr()}, BrokerAddrs: []string{rec.BrokerAddr()},
		RESTURL: s.RESTURL(), CreateConsumers: true, Max: true, Settle: 10 * time.Second,
	})
	if err != nil || !res.OK() {
		t.Fatalf("replay: %v, %+v", err, res)
	}
	if _, err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	runID, err := RunIDOf(run)
	if err != nil || runID != "run-2" {
		t.Fatalf("RunIDOf = %q, %v", runID, err)
	}
	d, err := Diff(context.Background(), orig, recorded, Options{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed != 0 || d.OnlyA != 0 || d.Equal != d.A.Records {
		t.Fatalf("%d changed, %d only in the trace, %d of %d equal; first differences: %+v", d.Changed, d.OnlyA, d.Equal, d.A.Records, d.Diffs)
	}
	for _, g := range d.Groups {
		delivered := g.Flow == format.FlowServerToAgent.String() || g.Flow == format.FlowServerToSource.String()
		resubscribed := g.Type == "subscribe" // a stream the replay had to open again
		if g.OnlyB > 0 && !delivered && !resubscribed && g.Record != format.TypeOutcome.String() {
			t.Errorf("only in the recording: %+v", g)
		}
	}
	// Without the run id, every record with a resource id is another one.
	d, err = Diff(context.Background(), orig, recorded, Options{})
	if err != nil || d.OnlyA != 24 {
		t.Fatalf("without the run id: %d only in the trace, %v", d.OnlyA, err)
	}
}
