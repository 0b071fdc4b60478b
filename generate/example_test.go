package generate_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cereplay/cereplay/generate"
)

// Generate a small version of the scale test: 10 clusters × 5 works, each
// work answered by an Applied and then an Available status.
func ExampleGenerate() {
	tmp, err := os.MkdirTemp("", "cereplay-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 10, 5
	p.StatusUpdates = 2
	m, err := generate.Generate(context.Background(), filepath.Join(tmp, "trace"), p, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("records:", m.Records)
	fmt.Println("spec creates:", m.CountsByFlow["source>server"])
	fmt.Println("status updates:", m.CountsByFlow["agent>server"])
	fmt.Println("subscribes:", m.CountsByFlow["agent-subscribe"], "agents,", m.CountsByFlow["source-subscribe"], "source")
	fmt.Println("first consumer:", m.Consumers[0])
	// Output:
	// records: 161
	// spec creates: 50
	// status updates: 100
	// subscribes: 10 agents, 1 source
	// first consumer: maestro-cluster-1
}

// A delay distribution is given as a flag value.
func ExampleParseDelay() {
	d, err := generate.ParseDelay("lognormal:median=1s,sigma=0.5")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d)
	// Output: lognormal:median=1s,sigma=0.5,max=1m0s
}
