package replay

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
)

// --only source at --max against a target whose agents answer nothing
// (here: sim with no agent connected) plays the whole trace: the statuses
// awaited from real agents are the fleet's to send, not a backlog of the
// target's, so they must not hold back the reading (with more of them than
// 8 × --max-inflight the run stalled, sending nothing more, in silence).
func TestOnlySourceMaxDoesNotStallOnAwaitedStatuses(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster, p.Rate = 4, 20, 1000 // 80 specs, their statuses awaited
	p.SubscribePause, p.CreateAfter = 0, 0
	trace := generateTrace(t, p)
	cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
	cfg.Max, cfg.CreateConsumers, cfg.Only, cfg.MaxInflight = true, true, SideSource, 2 // backpressure at 16 awaited
	cfg.Settle = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the run stalled until its context ended: %d specs sent", res.Summary.SpecsSent)
	}
	if res.Summary.SpecsSent != 80 {
		t.Fatalf("%d specs sent, want all 80", res.Summary.SpecsSent)
	}
	outs := checkAccounting(t, trace, cfg.Out)
	for _, o := range outs {
		if o[0].Flow == format.FlowSourceToServer && o[0].Outcome.Status != format.OutcomeSent {
			t.Errorf("spec %d: %+v", o[0].Outcome.Index, o[0].Outcome)
		}
	}
}
