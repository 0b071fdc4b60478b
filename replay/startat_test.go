package replay

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckStartAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		start    time.Time
		lateDrop time.Duration
		ok       bool
	}{
		{time.Time{}, 0, true},
		{now.Add(time.Hour), 0, true},
		{now.Add(-30 * time.Second), 0, true},
		{now.Add(-time.Minute), 0, true},
		{now.Add(-90 * time.Second), 0, false},
		{now.Add(-90 * time.Second), 2 * time.Minute, true},
		{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), 0, false},
	}
	for _, tc := range tests {
		err := CheckStartAt(tc.start, now, tc.lateDrop)
		if (err == nil) != tc.ok {
			t.Errorf("start %v, late-drop %v: error %v, want ok %v", tc.start, tc.lateDrop, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "in the past") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("error %q: want one line saying the start is in the past", err)
		}
	}
	cfg := Config{Trace: "t", SourceAddrs: []string{"a"}, BrokerAddrs: []string{"b"}, StartAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--start-at 2020-01-01T00:00:00Z is") {
		t.Errorf("Run with a start in 2020: %v", err)
	}
}

func TestNextMark(t *testing.T) {
	t.Parallel()
	for left, want := range map[time.Duration]time.Duration{
		2*time.Hour + 3*time.Minute:  2 * time.Hour,
		10*time.Minute + time.Second: 10 * time.Minute,
		10 * time.Minute:             9 * time.Minute,
		45 * time.Second:             40 * time.Second,
		10 * time.Second:             9 * time.Second,
		1500 * time.Millisecond:      time.Second,
		time.Second:                  0,
	} {
		if got := nextMark(left); got != want {
			t.Errorf("nextMark(%v) = %v, want %v", left, got, want)
		}
	}
}

// A start instant in the future is announced with a countdown; Ctrl-C
// while waiting for it ends the run at once, with no negative durations.
// (An interrupt leaves the records not yet read without outcomes.)
func TestReplayInterruptedBeforeStart(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 2}.write(t, trace)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log bytes.Buffer
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.StartAt = true, time.Now().Add(time.Hour)
	cfg.Log = &logWriter{b: &log}
	cfg.Log = teeCancel{cfg.Log, cancelOn{"waiting for the start instant", cancel}}
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the interrupted wait took %v", took)
	}
	sum := res.Summary
	if res.OK() || sum.WallSeconds != 0 || sum.SendSeconds != 0 || sum.SpecsSent != 0 {
		t.Errorf("ok %v, wall %v s, send %v s, %d specs sent: want a failed run of no time", res.OK(), sum.WallSeconds, sum.SendSeconds, sum.SpecsSent)
	}
	var text bytes.Buffer
	_ = sum.WriteText(&text)
	if strings.Contains(text.String(), "in -") {
		t.Errorf("negative duration in the summary:\n%s", text.String())
	}
	if !strings.Contains(log.String(), "waiting for the start instant") {
		t.Errorf("the wait was not announced:\n%s", log.String())
	}
}

// teeCancel writes to w and to the canceller c.
type teeCancel struct {
	w interface{ Write([]byte) (int, error) }
	c cancelOn
}

func (t teeCancel) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	_, _ = t.c.Write(p)
	return n, err
}
