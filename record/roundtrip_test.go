package record_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
	"github.com/cereplay/cereplay/record"
	"github.com/cereplay/cereplay/replay"
	"github.com/cereplay/cereplay/sim"
)

// replayInto plays trace against s (or through the addresses given) at
// --max and fails the test unless every event is accounted for.
func replayInto(t *testing.T, trace string, s *sim.Server, sourceAddr, brokerAddr string) *replay.Result {
	t.Helper()
	res, err := replay.Run(context.Background(), replay.Config{
		Trace:           trace,
		Out:             filepath.Join(t.TempDir(), "run"),
		SourceAddrs:     []string{sourceAddr},
		BrokerAddrs:     []string{brokerAddr},
		RESTURL:         s.RESTURL(),
		CreateConsumers: true,
		Max:             true,
		Settle:          10 * time.Second,
		ReconnectMin:    50 * time.Millisecond,
		ReconnectMax:    200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("replay of %s: %v", trace, err)
	}
	if !res.OK() {
		t.Fatalf("replay of %s not OK: %+v", trace, res.Summary)
	}
	return res
}

// TestRoundTrip generates a trace, replays it through the recorder into
// sim, then replays the recording into a fresh sim: both runs account for
// every event, and the recording holds as many records of each flow and
// event type as the original, every spec's payload included (the replay
// sends trace bytes as they are when ids are not remapped, so each
// recorded spec equals the original's after the resource version the
// replay sets at send time).
func TestRoundTrip(t *testing.T) {
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 100, 50
	if testing.Short() {
		p.Clusters, p.WorksPerCluster = 10, 5
	}
	orig := filepath.Join(t.TempDir(), "orig")
	if _, err := generate.Generate(context.Background(), orig, p, nil); err != nil {
		t.Fatal(err)
	}
	first := startSim(t, time.Second)
	rec, recorded := startRecorder(t, first, func(c *record.Config) { c.SealEvery = 200 * time.Millisecond })
	replayInto(t, orig, first, rec.SourceAddr(), rec.BrokerAddr())
	sum, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d records, %d statuses linked, %d unlinked", sum.Records, sum.Linked, sum.Unlinked)

	om, orecs := readTrace(t, orig)
	rm, rrecs := readTrace(t, recorded)
	for flow, n := range om.CountsByFlow {
		if rm.CountsByFlow[flow] != n {
			t.Errorf("flow %s: %d records recorded, %d in the original", flow, rm.CountsByFlow[flow], n)
		}
	}
	for typ := range om.CountsByType {
		for _, f := range []format.Flow{format.FlowSourceToServer, format.FlowAgentToServer} {
			if o, r := countOf(orecs, f, typ), countOf(rrecs, f, typ); o != r {
				t.Errorf("%s %s: %d recorded, %d in the original", f, typ, r, o)
			}
		}
	}
	if sum.Unlinked != 0 {
		t.Errorf("%d statuses recorded without a trigger", sum.Unlinked)
	}
	if d := specDiffs(orecs, rrecs); len(d) > 0 {
		t.Errorf("%d recorded specs differ from the original's, first: %s", len(d), d[0])
	}

	second := startSim(t, time.Second)
	replayInto(t, recorded, second, second.SourceAddr(), second.BrokerAddr())
}

func countOf(recs []format.Record, f format.Flow, typ string) int {
	n := 0
	for _, r := range recs {
		if r.Type == format.TypeEvent && r.Flow == f && r.EventType == typ {
			n++
		}
	}
	return n
}

// specDiffs compares the messages sources and agents published in two
// traces as multisets, after undoing the replay's documented rewrites
// (replay.Rewrite: a status's ce-resourceversion and ce-sequenceid are set
// at send time; specs are sent as they are without a run id). It returns
// one line per message found in one trace and not the other.
func specDiffs(orig, rec []format.Record) []string {
	norm := func(recs []format.Record) map[string]int {
		m := map[string]int{}
		for _, r := range recs {
			if r.Type != format.TypeEvent || (r.Flow != format.FlowSourceToServer && r.Flow != format.FlowAgentToServer) {
				continue
			}
			b := r.Data
			if r.Flow == format.FlowAgentToServer && r.EventType == maestro.TypeStatusUpdate {
				set := []wire.Attr{wire.ResourceVersionAttr(0), {Key: maestro.AttrSequenceID, Kind: wire.AttrString}}
				var err error
				if b, err = wire.PatchAttrs(nil, b, set); err != nil {
					b = r.Data
				}
			}
			m[r.Flow.String()+" "+string(b)]++
		}
		return m
	}
	o, r := norm(orig), norm(rec)
	var diffs []string
	for k, n := range o {
		if r[k] != n {
			diffs = append(diffs, fmt.Sprintf("%s: %d in the original, %d recorded (%.60q)", k[:strings.IndexByte(k, ' ')], n, r[k], k))
		}
	}
	for k, n := range r {
		if _, ok := o[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("recorded only: %d × %.60q", n, k))
		}
	}
	return diffs
}
