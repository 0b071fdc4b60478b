package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/cputime"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
)

// benchAgents is the scale of Maestro's published test: 3,000 clusters,
// each with its own agent connection and Subscribe stream.
const benchAgents = 3000

// benchPublishers is how many goroutines publish at once, spread over a
// few connections, as a replayer's sources and agents do.
const benchPublishers = 16

// benchEnv is a sim with 3,000 consumers, one connection and drained
// Subscribe stream per agent, and a drained source stream.
type benchEnv struct {
	srv      *Server
	clusters []string
	source   []pbv1.CloudEventServiceClient
	broker   []pbv1.CloudEventServiceClient
	specs    atomic.Int64 // spec events received by agents
	statuses atomic.Int64 // status events received by the source
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := &benchEnv{srv: startSim(b, func(c *Config) { c.RESTListen, c.MetricsListen, c.HealthListen = "", "", "" })}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	drain := func(s pbv1.CloudEventService_SubscribeClient, n *atomic.Int64) {
		defer wg.Done()
		_ = maestro.CountEvents(s, n) // ends with the run's context
	}
	for i := range benchAgents {
		cluster := fmt.Sprintf("bench-cluster-%d", i+1)
		e.clusters = append(e.clusters, cluster)
		if err := e.srv.CreateConsumer(cluster); err != nil {
			b.Fatal(err)
		}
		conn, err := grpc.NewClient(e.srv.BrokerAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		sc, err := pbv1.NewCloudEventServiceClient(conn).Subscribe(ctx, maestro.AgentSubscription(cluster))
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go drain(sc, &e.specs)
	}
	for range 4 {
		e.source = append(e.source, dial(b, e.srv.SourceAddr()))
		e.broker = append(e.broker, dial(b, e.srv.BrokerAddr()))
	}
	sc, err := e.source[0].Subscribe(ctx, maestro.SourceSubscription(goldenSource))
	if err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go drain(sc, &e.statuses)
	deadline := time.Now().Add(time.Minute)
	for e.srv.agentStreamCount() < benchAgents || len(e.srv.sources.of(goldenSource)) < 1 {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d agent streams registered", e.srv.agentStreamCount(), benchAgents)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

// parallel runs fn(i) for i in [from, to) on benchPublishers goroutines,
// each with its own copy of template.
func parallel(b *testing.B, from, to int, template *pbv1.CloudEvent, fn func(w, i int, ev *pbv1.CloudEvent) error) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for w := range benchPublishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := proto.Clone(template).(*pbv1.CloudEvent)
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := fn(w, i, ev); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// waitCount waits until n reaches want.
func waitCount(b *testing.B, n *atomic.Int64, want int64, what string) {
	deadline := time.Now().Add(5 * time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d arrived", what, n.Load(), want)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func (e *benchEnv) createSpecs(b *testing.B, from, to int) {
	spec := golden(b, "01-source-spec-create_request")
	parallel(b, from, to, spec, func(w, i int, ev *pbv1.CloudEvent) error {
		cluster := e.clusters[i%benchAgents]
		ev.Id = fmt.Sprintf("bench-spec-%d", i)
		maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
		maestro.SetStringAttr(ev, maestro.AttrResourceID, maestro.ResourceID(goldenSource, cluster, fmt.Sprintf("w-%d", i)))
		_, err := e.source[w%len(e.source)].Publish(context.Background(), &pbv1.PublishRequest{Event: ev})
		return err
	})
}

// BenchmarkPublishSpec measures sim's spec path on loopback with 3,000
// subscribed agents: guestbook creates published by 16 goroutines, each
// op ending when the agent's stream has received the re-encoded event.
// cpu-µs/op is the whole process (publishers and drainers included).
func BenchmarkPublishSpec(b *testing.B) {
	e := newBenchEnv(b)
	n := 0 // resource ids stay unique across rounds
	b.Run(fmt.Sprintf("agents=%d", benchAgents), func(b *testing.B) {
		b.SetBytes(int64(proto.Size(golden(b, "01-source-spec-create_request"))))
		start := e.specs.Load()
		cpu := cputime.Process()
		b.ResetTimer()
		e.createSpecs(b, n, n+b.N)
		waitCount(b, &e.specs, start+int64(b.N), "spec events at agents")
		b.StopTimer()
		n += b.N
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// BenchmarkPublishStatus measures sim's status path: for resources created
// beforehand (untimed), agents publish a realistic guestbook status each
// (16 goroutines); an op ends when the source's stream has received the
// forwarded status with the spec added.
func BenchmarkPublishStatus(b *testing.B) {
	e := newBenchEnv(b)
	n := 0
	seq := maestro.NewSequenceIDs()
	b.Run(fmt.Sprintf("agents=%d", benchAgents), func(b *testing.B) {
		status := golden(b, "03rb-agent-status-update_request-realistic-available")
		b.SetBytes(int64(proto.Size(status)))
		specsBefore := e.specs.Load()
		e.createSpecs(b, n, n+b.N)
		waitCount(b, &e.specs, specsBefore+int64(b.N), "spec events at agents")
		start := e.statuses.Load()
		cpu := cputime.Process()
		b.ResetTimer()
		parallel(b, n, n+b.N, status, func(w, i int, ev *pbv1.CloudEvent) error {
			cluster := e.clusters[i%benchAgents]
			ev.Id = fmt.Sprintf("bench-status-%d", i)
			ev.Source = maestro.AgentID(cluster)
			maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
			maestro.SetStringAttr(ev, maestro.AttrResourceID, maestro.ResourceID(goldenSource, cluster, fmt.Sprintf("w-%d", i)))
			maestro.SetResourceVersion(ev, 1)
			maestro.SetSequenceID(ev, seq.Next())
			_, err := e.broker[w%len(e.broker)].Publish(context.Background(), &pbv1.PublishRequest{Event: ev})
			return err
		})
		waitCount(b, &e.statuses, start+int64(b.N), "forwarded status at the source")
		b.StopTimer()
		n += b.N
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}
