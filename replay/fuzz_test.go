package replay

import (
	"testing"
	"time"

	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/pace"
)

// FuzzStreamMessage feeds arbitrary bytes, as they could arrive on an agent
// or source Subscribe stream, to the handlers: nothing panics, and a
// message is counted once, whatever it holds. Seeds are the golden
// messages of PROTOCOL.md.
func FuzzStreamMessage(f *testing.F) {
	for _, name := range []string{"02-broker-to-agent-spec-create_request", "04-server-to-source-status-update_request",
		"06-broker-to-agent-spec-resync_response", "10-broker-to-agent-spec-delete_request", "12-heartbeat"} {
		f.Add(golden(f, name))
	}
	hb, _ := maestro.Marshal(maestro.NewHeartbeat("id"))
	f.Add(hb)
	f.Add([]byte{0x0a, 0xff})
	r := newTestRunner()
	a := &agent{r: r, cluster: "maestro-cluster-1", versions: map[string]int64{}}
	s := &source{r: r, id: "maestro"}
	f.Fuzz(func(t *testing.T, b []byte) {
		a.handle(b, time.Unix(0, 0))
		s.handle(b, time.Unix(0, 0))
		if r.tr.pending() != 0 {
			t.Fatalf("a received message created pending work")
		}
	})
}

// newTestRunner is the part of a runner the stream handlers use.
func newTestRunner() *runner {
	r := &runner{clock: pace.PreciseClock{}, accounting: newAccounting()}
	r.out = newOutbox(time.Now(), r.clock, r.m)
	r.tr = newTracker(r.out.emit, func(*statusState) {}, func(d time.Duration) time.Duration { return d })
	return r
}
