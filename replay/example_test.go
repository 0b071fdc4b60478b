package replay_test

import (
	"context"
	"fmt"
	"os"

	"github.com/cereplay/cereplay/replay"
)

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
