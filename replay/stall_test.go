package replay

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

// startBlackHole serves both Maestro ports on one loopback listener as a
// target that accepts everything and delivers nothing: Publish answers OK,
// Subscribe sends its header and then holds the stream open, silent.
func startBlackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(transport.RawServer(), grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(st)
		var req transport.RawMsg
		if err := st.RecvMsg(&req); err != nil {
			return err
		}
		if method == transport.MethodPublish {
			return st.SendMsg(&transport.RawMsg{})
		}
		if err := st.SendHeader(metadata.Pairs(maestro.SubscriptionIDHeader, "black-hole")); err != nil {
			return err
		}
		<-st.Context().Done()
		return nil
	}))
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return l.Addr().String()
}

// A target that accepts every Publish and delivers nothing does not hold a
// --max run forever on its backpressure: after --stall-timeout without a
// delivery the run stops and says why, and its rates count the time the
// run took, not the instant its sends took.
func TestReplayStalledTarget(t *testing.T) {
	t.Parallel()
	addr := startBlackHole(t)
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 10}.write(t, trace)
	cfg := Config{Trace: trace, Out: out, SourceAddrs: []string{addr}, BrokerAddrs: []string{addr},
		Max: true, MaxInflight: 1, StallTimeout: 300 * time.Millisecond, Settle: time.Minute}
	type result struct {
		res *Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := Run(context.Background(), cfg)
		done <- result{res, err}
	}()
	var got result
	select {
	case got = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the replay of a target that delivers nothing still waits after a minute")
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	sum := got.res.Summary
	problems := strings.Join(sum.Problems, "\n")
	want := "no spec delivered for 300ms (--stall-timeout) while"
	if got.res.OK() || !strings.HasPrefix(problems, want) || !strings.Contains(problems, "the target accepts Publish but delivers nothing to agents") {
		t.Fatalf("ok %v, problems %q; want first %q", got.res.OK(), problems, want)
	}
	if sum.SpecsSent == 0 || sum.SpecsSent == 20 {
		t.Errorf("%d specs sent: the --max backpressure (4 waiting) should hold the rest", sum.SpecsSent)
	}
	if sum.WallSeconds < 0.3 || sum.SpecsPerSecond > float64(sum.SpecsSent)/0.3 {
		t.Errorf("%d specs at %.0f/s in %.2fs: the rate must count the stall", sum.SpecsSent, sum.SpecsPerSecond, sum.WallSeconds)
	}
	checkAccounting(t, trace, out)
}

// cancelOn is a run log that cancels the run when a note containing
// what is written.
type cancelOn struct {
	what   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.what) {
		c.cancel()
	}
	return len(p), nil
}

// Ctrl-C while the run waits for its deliveries says so; it does not claim
// that the rest of the trace was not played when all of it was.
func TestReplayInterruptedWhileSettling(t *testing.T) {
	t.Parallel()
	addr := startBlackHole(t)
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 2}.write(t, trace)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Trace: trace, Out: out, SourceAddrs: []string{addr}, BrokerAddrs: []string{addr},
		Max: true, StallTimeout: time.Hour, Settle: time.Hour, Log: cancelOn{"waiting up to", cancel}}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(res.Summary.Problems, "\n")
	if res.OK() || !strings.Contains(problems, "interrupted while waiting for deliveries: every send was played") ||
		strings.Contains(problems, "not played") {
		t.Fatalf("ok %v, problems %q", res.OK(), problems)
	}
	if res.Summary.SpecsSent != 4 {
		t.Errorf("%d specs sent, want all 4", res.Summary.SpecsSent)
	}
	checkAccounting(t, trace, out)
}
