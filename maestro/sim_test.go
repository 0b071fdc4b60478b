package maestro_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/sim"
)

// TestFlowAgainstSim drives one resource through its whole life against the
// embedded Maestro simulator, with every message built by this package:
// REST consumer, create, delivery to the agent, status, forwarding to the
// source, REST view, delete, deletion ack and removal.
func TestFlowAgainstSim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := sim.LoopbackConfig()
	cfg.HeartbeatInterval = 0
	srv, err := sim.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	const cluster, sourceID = "cluster-1", "src"
	rest, err := maestro.NewRESTClient(srv.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if created, err := rest.CreateConsumer(ctx, cluster); err != nil || !created {
		t.Fatalf("create consumer: created=%v err=%v", created, err)
	}
	if created, err := rest.CreateConsumer(ctx, cluster); err != nil || created {
		t.Fatalf("create consumer again: created=%v err=%v", created, err)
	}
	consumers, err := rest.ListConsumers(ctx)
	if err != nil || len(consumers) != 1 || consumers[0].Name != cluster {
		t.Fatalf("consumers %+v, err %v", consumers, err)
	}

	agent := dial(t, srv.BrokerAddr())
	source := dial(t, srv.SourceAddr())
	agentStream := subscribe(ctx, t, agent, maestro.AgentSubscription(cluster))
	sourceStream := subscribe(ctx, t, source, maestro.SourceSubscription(sourceID))

	work := &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: cluster},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{
			RawExtension: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"default"}}`)},
		}}}},
	}
	id := maestro.ResourceID(sourceID, cluster, "web")
	create, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, sourceID, work, maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, source, create)

	spec, k := next(t, agentStream)
	if k.Type != maestro.TypeSpecCreate || k.ResourceID != id || k.ResourceVersion != 1 || k.Source != maestro.BrokerSource || k.Deleting {
		t.Fatalf("agent got %+v", k)
	}
	seqs := maestro.NewSequenceIDs()
	agentWork, err := maestro.AgentWork(spec)
	if err != nil {
		t.Fatal(err)
	}
	agentWork.Status.Conditions = []metav1.Condition{{Type: "Applied", Status: metav1.ConditionTrue, Reason: "AppliedManifestWorkComplete",
		Message: "Apply manifest work complete", LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second))}}
	status, err := maestro.NewStatusEvent(cluster, agentWork, seqs.Next(), maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, agent, status)

	_, k = next(t, sourceStream)
	hash, err := maestro.StatusHash(agentWork.Status)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type != maestro.TypeStatusUpdate || k.ResourceID != id || k.Source != maestro.AgentID(cluster) || k.OriginalSource != maestro.BrokerSource {
		t.Fatalf("source got %+v", k)
	}
	if got := maestro.StringAttr(status, maestro.AttrStatusHash); got != hash {
		t.Errorf("status hash %s, StatusHash %s", got, hash)
	}
	rb, err := rest.GetResourceBundle(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rb.ConsumerName != cluster || rb.Version != 1 || !strings.Contains(string(rb.Status), "Applied") {
		t.Errorf("resource bundle %+v status %s", rb, rb.Status)
	}

	del, err := maestro.NewSpecEvent(maestro.TypeSpecDelete, sourceID, work, maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, source, del)
	spec, k = next(t, agentStream)
	if k.Type != maestro.TypeSpecDelete || !k.Deleting || k.ResourceID != id {
		t.Fatalf("agent got %+v", k)
	}
	if agentWork, err = maestro.AgentWork(spec); err != nil {
		t.Fatal(err)
	}
	agentWork.Status.Conditions = []metav1.Condition{{Type: "Deleted", Status: metav1.ConditionTrue, Reason: "ManifestsDeleted",
		Message: "The manifests are deleted from the cluster " + cluster, LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second))}}
	if status, err = maestro.NewStatusEvent(cluster, agentWork, seqs.Next(), maestro.EventOptions{}); err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, agent, status)
	if _, k = next(t, sourceStream); k.ResourceID != id {
		t.Fatalf("source got %+v", k)
	}
	for {
		_, err := rest.GetResourceBundle(ctx, id)
		if errors.Is(err, maestro.ErrNotFound) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("resource bundle still present after the Deleted status: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The broker accepts the agent's spec resync request as built.
	resync, err := maestro.NewSpecResyncRequest(cluster, nil, maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, agent, resync)
}

func dial(t *testing.T, addr string) pbv1.CloudEventServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pbv1.NewCloudEventServiceClient(conn)
}

func subscribe(ctx context.Context, t *testing.T, c pbv1.CloudEventServiceClient, req *pbv1.SubscriptionRequest) pbv1.CloudEventService_SubscribeClient {
	t.Helper()
	stream, err := c.Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Get(maestro.SubscriptionIDHeader)) != 1 {
		t.Fatalf("no %s header: %v", maestro.SubscriptionIDHeader, md)
	}
	return stream
}

func publish(ctx context.Context, t *testing.T, c pbv1.CloudEventServiceClient, ce *pbv1.CloudEvent) {
	t.Helper()
	if _, err := c.Publish(ctx, &pbv1.PublishRequest{Event: ce}); err != nil {
		t.Fatalf("publish %s: %v", ce.GetType(), err)
	}
}

// next reads the next non-heartbeat event and its keys, read from its wire
// bytes as a replayer would.
func next(t *testing.T, s pbv1.CloudEventService_SubscribeClient) (*pbv1.CloudEvent, maestro.Keys) {
	t.Helper()
	for {
		ce, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(ce)
		if err != nil {
			t.Fatal(err)
		}
		k, err := maestro.ExtractKeys(b)
		if err != nil {
			t.Fatal(err)
		}
		if k.Type != maestro.TypeHeartbeat {
			return ce, k
		}
	}
}

// CountEvents counts what an agent is sent, heartbeats left out, until
// its stream ends.
func TestCountEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := sim.LoopbackConfig()
	cfg.HeartbeatInterval = 5 * time.Millisecond
	srv, err := sim.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const cluster, sourceID = "cluster-1", "src"
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	streamCtx, endStream := context.WithCancel(ctx)
	stream := subscribe(streamCtx, t, dial(t, srv.BrokerAddr()), maestro.AgentSubscription(cluster))
	var n atomic.Int64
	done := make(chan error, 1)
	go func() { done <- maestro.CountEvents(stream, &n) }()
	source := dial(t, srv.SourceAddr())
	for _, name := range []string{"a", "b"} {
		work := &workv1.ManifestWork{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster},
			Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{
				RawExtension: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"default"}}`)},
			}}}}}
		ev, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, sourceID, work, maestro.EventOptions{})
		if err != nil {
			t.Fatal(err)
		}
		publish(ctx, t, source, ev)
	}
	for n.Load() < 2 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // heartbeats meanwhile must not count
	endStream()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("CountEvents returned %v, want the stream's cancellation", err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("counted %d events, want the 2 specs", got)
	}
}
