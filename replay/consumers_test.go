package replay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testnet"
)

// Specs refused because their consumer does not exist say how to fix it.
func TestReplayMissingConsumerHint(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 1}.write(t, trace)
	cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
	cfg.Max, cfg.Settle = true, time.Second
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	problems := strings.Join(res.Summary.Problems, "\n")
	if res.OK() || !strings.Contains(problems, "2 sends refused because their consumer does not exist in the target") ||
		!strings.Contains(problems, "(--create-consumers)") {
		t.Fatalf("ok %v, problems %q", res.OK(), problems)
	}
}

// A --create-consumers that fails leaves no results folder behind.
func TestReplayCreateConsumersFailsCleanly(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 1}.write(t, trace)
	out := filepath.Join(t.TempDir(), "run")
	cfg := baseConfig(s, trace, out)
	cfg.Max, cfg.CreateConsumers, cfg.RESTURL = true, true, "http://"+testnet.DeadAddr(t)
	res, err := Run(context.Background(), cfg)
	if res != nil || err == nil {
		t.Fatalf("result %v, error %v: want the consumers' error", res, err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a run that never started left its results folder: %v", err)
	}
}

func TestConfigReconnectBounds(t *testing.T) {
	t.Parallel()
	cfg := Config{Trace: "t", SourceAddrs: []string{"a"}, BrokerAddrs: []string{"b"}, ReconnectMin: 2 * time.Second, ReconnectMax: time.Second}
	if _, err := cfg.withDefaults(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "reconnect min 2s is greater than reconnect max 1s") {
		t.Fatalf("error %v", err)
	}
	cfg.ReconnectMax = 0
	if c, err := cfg.withDefaults(); err != nil || c.ReconnectMax != DefaultReconnectMax {
		t.Fatalf("reconnect max %v, %v; want the default", c.ReconnectMax, err)
	}
}
