package replay_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cereplay/cereplay/replay"
)

// A schedule is a pure function of the event's position and recorded
// offset, measured from one start instant.
func ExamplePacer() {
	pacers := []struct {
		name string
		p    replay.Pacer
	}{
		{"recorded offsets", replay.SpeedPacer{Speed: 1}},
		{"twice as fast", replay.SpeedPacer{Speed: 2}},
		{"2,000 per second", replay.RatePacer{Rate: 2000}},
		{"as fast as possible", replay.MaxPacer{}},
	}
	offsets := []time.Duration{0, 50 * time.Millisecond, 120 * time.Millisecond}
	for _, x := range pacers {
		fmt.Printf("%-20s", x.name)
		for n, off := range offsets {
			fmt.Printf(" %v", x.p.Due(uint64(n), off))
		}
		fmt.Println()
	}
	// Output:
	// recorded offsets     0s 50ms 120ms
	// twice as fast        0s 25ms 60ms
	// 2,000 per second     0s 500µs 1ms
	// as fast as possible  0s 0s 0s
}

// Run plays a trace and writes the run folder; the summary says whether
// every event was sent and delivered.
func ExampleRun() {
	res, err := replay.Run(context.Background(), replay.Config{
		Trace:           "traces/default",
		Out:             "runs/example",
		SourceAddrs:     []string{"127.0.0.1:8090"},
		BrokerAddrs:     []string{"127.0.0.1:8091"},
		RESTURL:         "http://127.0.0.1:8000",
		CreateConsumers: true,
		Max:             true,
		RunID:           "example",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	_ = res.Summary.WriteText(os.Stdout)
	if !res.OK() {
		os.Exit(1)
	}
}
