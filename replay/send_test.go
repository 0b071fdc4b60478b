package replay

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/pace"
)

// Agent events that answer nothing take the one send path that specs and
// replies take: a run half a minute behind its schedule measures their
// lateness and drops them by --late-drop, as it does the specs.
func TestReplayLateDropsPlainAgentEvents(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 3, PlainStatuses: true}.write(t, trace)
	fakeStart := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.Rate, cfg.Settle = true, 50, 3*time.Second
	cfg.StartAt, cfg.LateDrop, cfg.AllowDropped = fakeStart.Add(-30*time.Second), time.Second, 12
	cfg.Clock = pace.NewFakeClock(fakeStart)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	outs := checkAccounting(t, trace, out)
	r, err := format.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plain := 0
	for i := uint64(0); ; i++ {
		rec, err := r.Next()
		if err != nil {
			break
		}
		if rec.Flow != format.FlowAgentToServer && rec.Flow != format.FlowSourceToServer {
			continue
		}
		plain++
		if o := outs[i][0].Outcome; o.Status != format.OutcomeDroppedLate || o.Lateness < 25*time.Second {
			t.Errorf("record %d (%s): outcome %s late %v, want dropped late by about 30s", i, rec.Flow, o.Status, o.Lateness)
		}
	}
	if plain != 12 {
		t.Fatalf("%d specs and agent events in the trace, want 12", plain)
	}
	if n := res.Summary.SendLateness.Count; n != 12 {
		t.Errorf("send lateness of %d sends, want 12 (specs and agent events)", n)
	}
	if n := res.Summary.Outcomes[format.OutcomeDroppedLate.String()]; n != 12 {
		t.Errorf("%d sends dropped late, want 12: %v", n, res.Summary.Outcomes)
	}
}

// Every instant the summary reports is on the run's clock: with a fake
// clock, the last send lies between T0 and the end of the run.
func TestReplaySummaryOnRunClock(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 3}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.Rate, cfg.Settle = true, 50, 3*time.Second
	cfg.Clock = pace.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("not OK: %v %v", res.Summary.Problems, res.Summary.Outcomes)
	}
	// The sixth spec is due 100 ms after T0, on the fake clock.
	if sum := res.Summary; sum.SendSeconds < 0.1 || sum.SendSeconds > sum.WallSeconds {
		t.Errorf("summary: last send %vs after T0, run %vs: want from 0.1s to the run's length", sum.SendSeconds, sum.WallSeconds)
	}
}

// counter.wait returns only once every send counted, including one added
// while it waits, is done.
func TestCounterWaitsForLateAdds(t *testing.T) {
	var c counter
	c.wait() // nothing in flight
	c.add()
	waited := make(chan struct{})
	go func() {
		c.wait()
		close(waited)
	}()
	c.add()
	c.done()
	select {
	case <-waited:
		t.Fatal("wait returned with one send in flight")
	default:
	}
	c.done()
	<-waited
	// With no one waiting, counting costs no allocation.
	if n := testing.AllocsPerRun(100, func() { c.add(); c.done() }); n != 0 {
		t.Errorf("add and done allocate %v times, want 0", n)
	}
}

// Released sends run on goroutines that, after their call, wait for the
// next send instead of ending: every send runs once, the goroutines that
// made the calls wait afterwards (no more than the calls in flight), and
// they end with the run's streams.
func TestPublishersWaitForTheNextSend(t *testing.T) {
	t.Parallel()
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	r := &runner{cfg: Config{Max: true}, clock: pace.NewFakeClock(time.Now()), accounting: newAccounting(),
		sendPath: newSendPath(4, false), streamCtx: streams}
	var ran atomic.Int64
	for range 100 {
		r.release(context.Background(), sendJob{slots: r.sem,
			prepare: func(time.Duration, time.Time) (outCall, bool) { ran.Add(1); return outCall{}, false }})
	}
	r.sends.wait()
	if n := ran.Load(); n != 100 {
		t.Fatalf("%d of 100 sends ran", n)
	}
	testwait.Until(t, "a publishing goroutine waiting for the next send", func() bool { return r.idlePublishers() > 0 })
	if n := r.idlePublishers(); n > 4 {
		t.Fatalf("%d publishing goroutines wait, more than the 4 calls in flight", n)
	}
	endStreams()
	testwait.Until(t, "the waiting goroutines to end with the streams", func() bool { return r.idlePublishers() == 0 })
}

// A Publish the target does not answer within --publish-timeout fails
// with DeadlineExceeded and a note naming the flag, once for each spec,
// and everything is accounted; the statuses that answer it are never
// sent.
func TestReplayPublishTimeout(t *testing.T) {
	t.Parallel()
	c := simConfig()
	c.PublishLatency = 5 * time.Second
	s := startSim(t, c)
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 2}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.Max, cfg.CreateConsumers, cfg.PublishTimeout, cfg.Settle = true, true, 100*time.Millisecond, 100*time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	outs := checkAccounting(t, trace, out)
	failed := 0
	for _, o := range outs {
		if o[0].Flow != format.FlowSourceToServer {
			continue
		}
		oc := o[0].Outcome
		if oc.Status != format.OutcomeFailed || codes.Code(oc.Code) != codes.DeadlineExceeded || !strings.Contains(oc.Note, "--publish-timeout") {
			t.Errorf("spec outcome %s %s %q, want failed DeadlineExceeded naming --publish-timeout", oc.Status, codes.Code(oc.Code), oc.Note)
		}
		if oc.Latency > 4*time.Second {
			t.Errorf("spec call took %v, want about the 100ms timeout", oc.Latency)
		}
		failed++
	}
	if failed != 4 || res.Summary.SpecsSent != 4 || res.Summary.StatusesSent != 0 {
		t.Fatalf("%d spec outcomes, %d specs and %d statuses sent; want 4, 4, 0: %v", failed, res.Summary.SpecsSent, res.Summary.StatusesSent, res.Summary.Outcomes)
	}
}

// A caller keeps one context from call to call until a timeout spends it:
// the timeout cancels that context (with the timeout as its cause) and
// the next call gets a new one; a parent that ends ends them all.
func TestCallerReusesItsContext(t *testing.T) {
	parent, endParent := context.WithCancel(context.Background())
	defer endParent()
	var c caller
	defer c.release()
	first := c.arm(parent, time.Hour)
	if c.disarm() {
		t.Fatal("a call well within its timeout timed out")
	}
	if again := c.arm(parent, time.Hour); again != first || again.Err() != nil {
		t.Fatal("the next call did not reuse the context of the last")
	}
	c.disarm()

	spent := c.arm(parent, time.Millisecond)
	<-spent.Done() // the call "hangs" past its timeout
	if !c.disarm() {
		t.Fatal("disarm after the timeout fired did not report it")
	}
	if cause := context.Cause(spent); !errors.Is(cause, errPublishTimeout) {
		t.Fatalf("timed-out context's cause %v, want errPublishTimeout", cause)
	}
	fresh := c.arm(parent, time.Hour)
	if fresh == spent || fresh.Err() != nil {
		t.Fatal("the call after a timeout got the spent context")
	}
	c.disarm()

	endParent()
	if ended := c.arm(parent, time.Hour); ended.Err() == nil {
		t.Fatal("a call after the parent ended got a live context")
	}
	c.disarm()
}

// A restart asked for while a stream is drained cancels that stream; one
// asked for between streams cancels the next as soon as it is attached;
// a stream that ends by itself was not restarted.
func TestRestarter(t *testing.T) {
	var x restarter
	cancelled := 0
	cancel := func() { cancelled++ }

	x.attach(cancel)
	if x.detach() || cancelled != 0 {
		t.Fatalf("a stream that ended by itself: restarted, %d cancels", cancelled)
	}
	x.attach(cancel)
	x.restart()
	if cancelled != 1 || !x.detach() {
		t.Fatalf("restart during a drain: %d cancels, want 1, and a restarted stream", cancelled)
	}
	x.restart() // between streams
	if cancelled != 1 {
		t.Fatal("a restart between streams cancelled something")
	}
	x.attach(cancel)
	if cancelled != 2 || !x.detach() {
		t.Fatalf("the stream after a pending restart: %d cancels, want 2, and a restarted stream", cancelled)
	}
	x.attach(cancel)
	if x.detach() || cancelled != 2 {
		t.Fatal("a pending restart applied twice")
	}
}

// A bufPool hands out empty buffers with room for the event and its
// patched attributes, and a buffer given back serves the next get without
// an allocation (the race detector's pool drops some on purpose).
func TestBufPool(t *testing.T) {
	var p bufPool
	b := p.get(5000)
	if len(b) != 0 || cap(b) < 5000+512 {
		t.Fatalf("get(5000): len %d cap %d", len(b), cap(b))
	}
	p.put(append(b, "event"...))
	if b := p.get(100_000); cap(b) < 100_000 {
		t.Fatalf("get(100000) after a smaller put: cap %d", cap(b))
	}
	if raceEnabled {
		return
	}
	p.put(make([]byte, 0, 8192))
	if n := testing.AllocsPerRun(100, func() { p.put(p.get(4000)) }); n != 0 {
		t.Errorf("a get and put allocate %v times, want 0", n)
	}
}
