package sim

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
)

func TestStartRefusesBadConfig(t *testing.T) {
	busy := startSim(t)
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"bad address":      {func(c *Config) { c.BrokerListen = "localhost" }, "broker listen address"},
		"bad port":         {func(c *Config) { c.RESTListen = "127.0.0.1:http2" }, "REST listen address"},
		"negative delay":   {func(c *Config) { c.PublishLatency = -1 }, "publish latency"},
		"no listener":      {func(c *Config) { *c = Config{} }, "nothing to serve"},
		"bad timeout":      {func(c *Config) { c.HTTPReadTimeout = -1 }, "HTTP read timeout"},
		"key without cert": {func(c *Config) { c.SourceTLS.KeyFile = "k.pem" }, "source TLS"},
		"CA without cert":  {func(c *Config) { c.BrokerTLS.ClientCAFile = "ca.pem" }, "broker client CA"},
		"port in use":      {func(c *Config) { c.SourceListen = busy.SourceAddr() }, "source listener on " + busy.SourceAddr()},
	} {
		t.Run(name, func(t *testing.T) {
			c := LoopbackConfig()
			tc.mutate(&c)
			srv, err := Start(context.Background(), c)
			if err == nil {
				srv.Close()
				t.Fatal("Start accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
			if name != "port in use" && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %q is not ErrConfig", err)
			}
		})
	}
}

func TestCloseStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	eventually(t, "listeners closed after the context ends", func() bool {
		select {
		case <-srv.done:
			return true
		default:
			return false
		}
	})
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseLeavesNoGoroutines runs traffic through every part of a sim,
// closes it and the clients, and checks that the goroutines are gone.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv, err := Start(context.Background(), LoopbackConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if err := srv.CreateConsumer(goldenCluster); err != nil {
			t.Fatal(err)
		}
		source, broker := dialConn(t, srv.SourceAddr()), dialConn(t, srv.BrokerAddr())
		defer source.Close()
		defer broker.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		agent, err := pbv1.NewCloudEventServiceClient(broker).Subscribe(ctx, maestro.AgentSubscription(goldenCluster))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agent.Header(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "agent registered", func() bool { return srv.agents.has(goldenCluster) })
		if _, err := pbv1.NewCloudEventServiceClient(source).Publish(ctx, &pbv1.PublishRequest{Event: golden(t, "01-source-spec-create_request")}); err != nil {
			t.Fatal(err)
		}
		if _, err := agent.Recv(); err != nil {
			t.Fatal(err)
		}
	}()
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func dialConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
