package record_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/record"
)

// TestMain runs a recorder instead of the tests when the kill test starts
// this binary as its child.
func TestMain(m *testing.M) {
	if args := os.Getenv("CEREPLAY_RECORD_CHILD"); args != "" {
		recorderChild(strings.Fields(args))
		return
	}
	os.Exit(m.Run())
}

// recorderChild records until killed: out, source upstream, broker upstream.
func recorderChild(args []string) {
	rec, err := record.Start(context.Background(), record.Config{Out: args[0],
		SourceListen: "127.0.0.1:0", SourceUpstream: args[1], BrokerListen: "127.0.0.1:0", BrokerUpstream: args[2],
		SealEvery: 100 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(rec.SourceAddr(), rec.BrokerAddr())
	select {}
}

// TestSIGKILLLeavesVerifiableTrace kills a recorder in the middle of
// traffic: verify accepts the folder, which holds at least every record
// the last manifest seen before the kill named.
func TestSIGKILLLeavesVerifiableTrace(t *testing.T) {
	const cluster, source = "kill-cluster", "kill-source"
	srv := startSim(t, 0)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rec")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CEREPLAY_RECORD_CHILD="+out+" "+srv.SourceAddr()+" "+srv.BrokerAddr())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addrs := strings.Fields(line)
	if err != nil || len(addrs) != 2 {
		t.Fatalf("recorder child: %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent, src := dialRaw(t, addrs[1]), dialRaw(t, addrs[0])
	st, _, err := agent.subscribe(ctx, t, maestro.AgentSubscription(cluster))
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the agent drains its deliveries
		var m transport.RawMsg
		for st.RecvMsg(&m) == nil {
		}
	}()
	var sent atomic.Int64
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ctx.Err() == nil; i++ {
			ev, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, source, sdkclient.ConfigMapWork(cluster, fmt.Sprintf("w%d", i)), maestro.EventOptions{})
			if err != nil {
				return
			}
			b, _ := maestro.Marshal(ev)
			if src.publish(ctx, publishRequest(b)) == nil {
				sent.Add(1)
			}
		}
	}()
	var seen int64
	eventually(t, "a manifest naming 50 records", func() bool {
		rd, err := format.Open(out)
		if err != nil {
			return false
		}
		defer rd.Close()
		seen = rd.Manifest().Records
		return seen >= 50
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cancel()
	<-stopped
	m, recs := readTrace(t, out)
	if m.Records < seen {
		t.Fatalf("the trace holds %d records after the kill, the manifest named %d before it", m.Records, seen)
	}
	t.Logf("killed after %d Publish calls; the trace holds %d records (%d events)", sent.Load(), len(recs), m.Records-m.Outcomes)
}
