package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"k8s.io/klog/v2"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/fixtures"
	"github.com/cereplay/cereplay/maestro"
)

func TestMain(m *testing.M) {
	// The SDK clients and broker log every connection through klog.
	klog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// startSim runs a sim on free loopback ports for the test.
func startSim(t testing.TB, mutate ...func(*Config)) *Server {
	t.Helper()
	c := LoopbackConfig()
	for _, m := range mutate {
		m(&c)
	}
	srv, err := Start(context.Background(), c)
	if err != nil {
		t.Fatalf("start sim: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close sim: %v", err)
		}
	})
	return srv
}

// dial opens a plain gRPC client to addr.
func dial(t testing.TB, addr string) pbv1.CloudEventServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pbv1.NewCloudEventServiceClient(conn)
}

// stream is an open Subscribe stream whose events are read in the
// background, heartbeats counted apart.
type stream struct {
	header     metadata.MD
	events     chan *pbv1.CloudEvent
	heartbeats chan *pbv1.CloudEvent
	err        chan error
}

func subscribe(t testing.TB, client pbv1.CloudEventServiceClient, req *pbv1.SubscriptionRequest) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sc, err := client.Subscribe(ctx, req)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	hdr, err := sc.Header()
	if err != nil {
		t.Fatalf("subscribe header: %v", err)
	}
	s := &stream{header: hdr, events: make(chan *pbv1.CloudEvent, 1000), heartbeats: make(chan *pbv1.CloudEvent, 100), err: make(chan error, 1)}
	go func() {
		for {
			ev, err := sc.Recv()
			if err != nil {
				s.err <- err
				return
			}
			if ev.GetType() == maestro.TypeHeartbeat {
				select {
				case s.heartbeats <- ev:
				default:
				}
				continue
			}
			s.events <- ev
		}
	}()
	return s
}

// next waits for the next non-heartbeat event.
func (s *stream) next(t testing.TB) *pbv1.CloudEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.err:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return nil
}

// none asserts that no event arrives within d.
func (s *stream) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Fatalf("unexpected event %s (resource %s)", ev.GetType(), maestro.StringAttr(ev, maestro.AttrResourceID))
	case <-time.After(d):
	}
}

// golden reads the CloudEvent of a protocol example (unwrapping a
// PublishRequest for client messages).
func golden(t testing.TB, name string) *pbv1.CloudEvent {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures.Examples(t), name+".pb.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := maestro.PublishRequestEvent(raw); err == nil && isPublishExample(name) {
		raw = b
	}
	ev, err := maestro.Unmarshal(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func isPublishExample(name string) bool {
	switch name[:2] {
	case "01", "03", "05", "07", "08", "09", "11":
		return true
	}
	return false
}

// getJSON fetches url and decodes a JSON body; it returns the status code.
func getJSON(t testing.TB, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %d %s: %v", url, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

// eventually waits for cond (see testwait.Until).
var eventually = testwait.Until
