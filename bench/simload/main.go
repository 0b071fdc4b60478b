// Command simload measures `cereplay sim` as a separate process under the
// scale of Maestro's published test: it starts sim, opens one connection
// and Subscribe stream per agent (3,000 by default) plus a source stream,
// publishes guestbook spec creates and then one realistic status per work,
// waits until every event has arrived on the other side, and reports sim's
// resident memory (from /proc) and its CPU time for each phase. The load
// itself runs in this process, so sim's figures are its own.
//
// Run it through bench/sim-rss.sh.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "simload:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("cereplay", "bin/cereplay", "cereplay binary to run `sim` from")
	examples := flag.String("examples", "testdata/protocol/examples", "folder of the protocol's golden messages")
	agents := flag.Int("agents", 3000, "agent connections, one Subscribe stream each")
	works := flag.Int("works", 30000, "spec creates, then as many statuses (0: streams only)")
	publishers := flag.Int("publishers", 16, "concurrent Publish calls")
	latency := flag.Duration("publish-latency", 0, "sim's --publish-latency")
	flag.Parse()

	spec, err := readEvent(filepath.Join(*examples, "01-source-spec-create_request.pb.bin"), true)
	if err != nil {
		return err
	}
	status, err := readEvent(filepath.Join(*examples, "03rb-agent-status-update_request-realistic-available.pb.bin"), true)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.Command(*bin, "sim", "--consumers", strconv.Itoa(*agents),
		"--source-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--rest-listen", "",
		"--metrics-listen", "", "--health-listen", "", "--publish-latency", latency.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", *bin, err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	addrs := map[string]string{}
	sc := bufio.NewScanner(out)
	for len(addrs) < 2 && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			addrs[f[0]] = f[1]
		}
	}
	if addrs["source"] == "" || addrs["broker"] == "" {
		return errors.New("sim did not print its source and broker addresses")
	}
	pid := cmd.Process.Pid
	fmt.Printf("sim pid %d ready in %v (%d consumers), RSS %s\n", pid, time.Since(started).Round(time.Millisecond), *agents, rss(pid))

	var specs, statuses atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	drain := func(s pbv1.CloudEventService_SubscribeClient, n *atomic.Int64) {
		defer wg.Done()
		_ = maestro.CountEvents(s, n) // ends with the run's context
	}
	clusters := make([]string, *agents)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("maestro-cluster-%d", i+1)
		conn, err := grpc.NewClient(addrs["broker"], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		s, err := pbv1.NewCloudEventServiceClient(conn).Subscribe(ctx, maestro.AgentSubscription(clusters[i]))
		if err != nil {
			return fmt.Errorf("agent %d subscribe: %w", i+1, err)
		}
		if _, err := s.Header(); err != nil {
			return fmt.Errorf("agent %d subscribe: %w", i+1, err)
		}
		wg.Add(1)
		go drain(s, &specs)
	}
	var sourceConns, brokerConns []pbv1.CloudEventServiceClient
	for range 4 {
		for _, a := range []struct {
			addr string
			dst  *[]pbv1.CloudEventServiceClient
		}{{addrs["source"], &sourceConns}, {addrs["broker"], &brokerConns}} {
			conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			*a.dst = append(*a.dst, pbv1.NewCloudEventServiceClient(conn))
		}
	}
	ss, err := sourceConns[0].Subscribe(ctx, maestro.SourceSubscription(spec.GetSource()))
	if err != nil {
		return err
	}
	if _, err := ss.Header(); err != nil {
		return err
	}
	wg.Add(1)
	go drain(ss, &statuses)
	time.Sleep(time.Second) // let the broker register the last streams
	fmt.Printf("%d agent streams + 1 source stream open: sim RSS %s, CPU so far %v\n", *agents, rss(pid), cpu(pid))
	if *works == 0 {
		return nil
	}

	phase := func(name string, n int, template *pbv1.CloudEvent, counter *atomic.Int64, conns []pbv1.CloudEventServiceClient,
		edit func(ev *pbv1.CloudEvent, i int)) error {
		c0, t0 := cpu(pid), time.Now()
		var next atomic.Int64
		errs := make(chan error, *publishers)
		var pw sync.WaitGroup
		for w := range *publishers {
			pw.Add(1)
			go func() {
				defer pw.Done()
				ev := proto.Clone(template).(*pbv1.CloudEvent)
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					edit(ev, i)
					if _, err := conns[w%len(conns)].Publish(ctx, &pbv1.PublishRequest{Event: ev}); err != nil {
						errs <- fmt.Errorf("%s %d: %w", name, i, err)
						return
					}
				}
			}()
		}
		pw.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		published := time.Since(t0)
		deadline := time.Now().Add(10 * time.Minute)
		for counter.Load() < int64(n) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %d of %d arrived", name, counter.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		wall, used := time.Since(t0), cpu(pid)-c0
		fmt.Printf("%-7s %d events: published in %v, all arrived in %v (%.0f events/s); sim CPU %v = %.0f µs/event = %.0f%% of one core; RSS %s\n",
			name, n, published.Round(time.Millisecond), wall.Round(time.Millisecond), float64(n)/wall.Seconds(),
			used.Round(time.Millisecond), float64(used.Microseconds())/float64(n), 100*used.Seconds()/wall.Seconds(), rss(pid))
		return nil
	}
	id := func(i int) (string, string) {
		cluster := clusters[i%len(clusters)]
		return cluster, maestro.ResourceID(spec.GetSource(), cluster, fmt.Sprintf("%s-gb-%d", cluster, i/len(clusters)))
	}
	if err := phase("spec", *works, spec, &specs, sourceConns, func(ev *pbv1.CloudEvent, i int) {
		cluster, rid := id(i)
		ev.Id = fmt.Sprintf("spec-%d", i)
		maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
		maestro.SetStringAttr(ev, maestro.AttrResourceID, rid)
	}); err != nil {
		return err
	}
	seq := maestro.NewSequenceIDs()
	if err := phase("status", *works, status, &statuses, brokerConns, func(ev *pbv1.CloudEvent, i int) {
		cluster, rid := id(i)
		ev.Id = fmt.Sprintf("status-%d", i)
		ev.Source = maestro.AgentID(cluster)
		maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
		maestro.SetStringAttr(ev, maestro.AttrResourceID, rid)
		maestro.SetResourceVersion(ev, 1)
		maestro.SetSequenceID(ev, seq.Next())
	}); err != nil {
		return err
	}
	fmt.Printf("sim total CPU %v, RSS %s\n", cpu(pid), rss(pid))
	return nil
}

func readEvent(path string, publish bool) (*pbv1.CloudEvent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if publish {
		req := &pbv1.PublishRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return req.GetEvent(), nil
	}
	ev := &pbv1.CloudEvent{}
	return ev, proto.Unmarshal(b, ev)
}

// rss reads the current and peak resident set size of a process.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	var cur, peak string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			cur = f[1]
		case "VmHWM:":
			peak = f[1]
		}
	}
	return fmt.Sprintf("%s MiB (peak %s MiB)", kib2mib(cur), kib2mib(peak))
}

func kib2mib(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil {
		return "?"
	}
	return strconv.Itoa(n / 1024)
}

// cpu reads a process's user+system CPU time from /proc/<pid>/stat.
func cpu(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
