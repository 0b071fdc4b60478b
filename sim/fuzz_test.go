package sim

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// FuzzPublish feeds arbitrary PublishRequest bytes to both ports'
// handlers: whatever arrives, sim answers with a status, never a panic, and
// keeps serving. Seeds are every golden message of the protocol examples.
func FuzzPublish(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures.Examples(f), "*.pb.bin"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if isPublishExample(filepath.Base(file)) {
			f.Add(b)
		} else if wrapped, err := proto.Marshal(&pbv1.PublishRequest{Event: mustUnmarshalEvent(f, b)}); err == nil {
			f.Add(wrapped)
		}
	}
	srv := startSim(f, func(c *Config) { c.RESTListen, c.MetricsListen, c.HealthListen = "", "", "" })
	if err := srv.CreateConsumer(goldenCluster); err != nil {
		f.Fatal(err)
	}
	source := &sourceServer{s: srv}
	broker := &brokerServer{s: srv}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &pbv1.PublishRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			return
		}
		ctx := context.Background()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = source.Publish(ctx, req)
			_, _ = broker.Publish(ctx, req)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("Publish did not return within 5s for %v\n%s", req, buf[:n])
		}
	})
}

func mustUnmarshalEvent(tb testing.TB, b []byte) *pbv1.CloudEvent {
	ev := &pbv1.CloudEvent{}
	if err := proto.Unmarshal(b, ev); err != nil {
		tb.Fatal(err)
	}
	return ev
}
