package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/syncbuf"
	"github.com/cereplay/cereplay/internal/testwait"
	"github.com/cereplay/cereplay/maestro"
)

// The sink answers a protobuf client (as ghz is) over loopback: Publish
// is counted with its bytes, Subscribe gets its header and stays open,
// a request that is not a PublishRequest with an event is refused and not
// counted, and the totals come out when the sink stops.
func TestSinkCountsPublishes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", &out) }()
	testwait.Until(t, "the sink's address", func() bool { return strings.HasPrefix(out.String(), "sink ") })
	addr := strings.TrimSpace(strings.TrimPrefix(out.String(), "sink "))

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pbv1.NewCloudEventServiceClient(cc)

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	sub, err := client.Subscribe(sctx, &pbv1.SubscriptionRequest{Source: "maestro"})
	if err != nil {
		t.Fatal(err)
	}
	md, err := sub.Header()
	if err != nil {
		t.Fatalf("subscribe header: %v", err)
	}
	if len(md.Get(maestro.SubscriptionIDHeader)) != 1 {
		t.Fatalf("subscribe header %v has no %s", md, maestro.SubscriptionIDHeader)
	}

	req := &pbv1.PublishRequest{Event: &pbv1.CloudEvent{Id: "e1", Source: "maestro", SpecVersion: "1.0",
		Type: "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request",
		Data: &pbv1.CloudEvent_BinaryData{BinaryData: make([]byte, 4000)}}}
	size := proto.Size(req)
	for range 3 {
		if _, err := client.Publish(ctx, req); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	_, err = client.Publish(ctx, &pbv1.PublishRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("publish without an event: %v, want InvalidArgument", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("publish 3 bytes %d subscribe 1 cpu ", 3*size)
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], want) {
		t.Fatalf("output %q, want a second line starting %q", out.String(), want)
	}
}

// A port that cannot be listened on is an error naming it.
func TestSinkBadListen(t *testing.T) {
	err := run(context.Background(), "127.0.0.1:-1", &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:-1") {
		t.Fatalf("run on a bad address: %v", err)
	}
}
