package record_test

import (
	"context"
	"testing"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/maestro"
)

// TestSDKLifecycleThroughProxy drives sim through the recorder with the
// SDK's own agent and source clients, over a work's whole life, and checks
// the recording: every flow, statuses linked to the delivery they answer,
// forwards to the status they carry, a sent outcome after each Publish.
func TestSDKLifecycleThroughProxy(t *testing.T) {
	const cluster, sourceID = "cluster-a", "flow-source"
	srv := startSim(t, 0)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	rec, out := startRecorder(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent := sdkclient.StartAgent(t, ctx, rec.BrokerAddr(), cluster)
	source := sdkclient.StartSource(t, ctx, rec.SourceAddr(), sourceID)
	eventually(t, "agent and source streams", func() bool {
		p := rec.Progress()
		return p.Agents == 1 && p.Sources == 1
	})

	sdkclient.Lifecycle(t, ctx, agent, source, cluster, sourceID, nil)
	cancel()
	sum, err := rec.Close()
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	m, recs := readTrace(t, out)
	t.Logf("summary %+v; manifest counts %v %v", sum, m.CountsByFlow, m.CountsByType)

	for _, f := range []format.Flow{format.FlowSourceToServer, format.FlowAgentToServer, format.FlowServerToAgent,
		format.FlowServerToSource, format.FlowAgentSubscribe, format.FlowSourceSubscribe} {
		if m.CountsByFlow[f.String()] == 0 {
			t.Errorf("no %s record", f)
		}
	}
	// One create and one delete, each published by the source and
	// delivered to the agent.
	if m.CountsByType[maestro.TypeSpecCreate] != 2 || m.CountsByType[maestro.TypeSpecDelete] != 2 {
		t.Errorf("spec records by type: %v", m.CountsByType)
	}
	if len(m.Consumers) != 1 || m.Consumers[0] != cluster || len(m.Sources) != 1 || m.Sources[0] != sourceID {
		t.Errorf("consumers %v, sources %v", m.Consumers, m.Sources)
	}
	publishes, outcomes := 0, 0
	for i, r := range recs {
		switch {
		case r.Type == format.TypeOutcome:
			outcomes++
			ev := recs[r.Outcome.Index]
			if ev.Type != format.TypeEvent || (ev.Flow != format.FlowSourceToServer && ev.Flow != format.FlowAgentToServer) {
				t.Errorf("outcome %d names record %d, not a Publish", i, r.Outcome.Index)
			}
			if r.Outcome.Status != format.OutcomeSent || r.Outcome.Latency <= 0 {
				t.Errorf("outcome %d: %+v", i, r.Outcome)
			}
		case r.Flow == format.FlowSourceToServer || r.Flow == format.FlowAgentToServer:
			publishes++
		}
		if r.Flow == format.FlowAgentToServer && r.Type == format.TypeEvent && r.EventType == maestro.TypeStatusUpdate {
			if !r.HasTrigger {
				t.Errorf("status %d has no trigger", i)
				continue
			}
			d := recs[r.Trigger]
			if d.Flow != format.FlowServerToAgent || d.ResourceID != r.ResourceID || r.Delay != r.Offset-d.Offset {
				t.Errorf("status %d triggers on %d (%s %s), delay %v", i, r.Trigger, d.Flow, d.ResourceID, r.Delay)
			}
		}
		if r.Flow == format.FlowServerToAgent && r.EventType == maestro.TypeSpecCreate {
			if !r.HasTrigger || recs[r.Trigger].Flow != format.FlowSourceToServer || recs[r.Trigger].EventType != maestro.TypeSpecCreate {
				t.Errorf("delivery %d: trigger %v %d", i, r.HasTrigger, r.Trigger)
			}
		}
		if r.Flow == format.FlowServerToSource && r.EventType == maestro.TypeStatusUpdate && !r.HasTrigger {
			t.Errorf("forward %d has no trigger", i)
		}
	}
	if publishes != outcomes {
		t.Errorf("%d Publish records, %d outcomes", publishes, outcomes)
	}
	if sum.Linked == 0 || sum.Digest != m.Digest {
		t.Errorf("summary: linked %d, digest %q vs %q", sum.Linked, sum.Digest, m.Digest)
	}
}
