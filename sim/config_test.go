package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
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
