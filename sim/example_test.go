package sim_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/sim"
)

// Start a sim on free loopback ports, register a consumer, and point
// Maestro clients (agents at BrokerAddr, sources at SourceAddr, REST
// clients at RESTURL) at it.
func Example() {
	srv, err := sim.Start(context.Background(), sim.LoopbackConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	rest, err := maestro.NewRESTClient(srv.RESTURL(), nil, "")
	if err != nil {
		log.Fatal(err)
	}
	created, err := rest.CreateConsumer(context.Background(), "cluster-1")
	if err != nil {
		log.Fatal(err)
	}
	consumers, err := rest.ListConsumers(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, len(consumers), consumers[0].Name)
	// Output: true 1 cluster-1
}
