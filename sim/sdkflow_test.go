package sim

import (
	"context"
	"net/http"
	"testing"

	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/maestro"
)

// TestSDKFlow drives sim with the SDK's own agent and source clients
// through a work's whole life: create, delivery, status, forwarding,
// delete, Deleted, removal.
func TestSDKFlow(t *testing.T) {
	const cluster, sourceID = "cluster-a", "flow-source"
	srv := startSim(t)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent := sdkclient.StartAgent(t, ctx, srv.BrokerAddr(), cluster)
	source := sdkclient.StartSource(t, ctx, srv.SourceAddr(), sourceID)
	eventually(t, "agent and source streams", func() bool {
		return testutilGauge(t, srv, "sim_subscribers", "broker") == 1 && testutilGauge(t, srv, "sim_subscribers", "source") == 1
	})

	// create, delivery, status, forward; REST shows the status; delete,
	// Deleted, removal.
	id := sdkclient.Lifecycle(t, ctx, agent, source, cluster, sourceID, func(id string) {
		var bundle bundleView
		if code := getJSON(t, srv.RESTURL()+maestro.ResourceBundlesPath+"/"+id, &bundle); code != http.StatusOK {
			t.Fatalf("REST resource bundle: %d", code)
		}
		conds, _ := bundle.Status["conditions"].([]any)
		if len(conds) != 1 || conds[0].(map[string]any)["type"] != "Applied" || bundle.ConsumerName != cluster || bundle.Version != 1 {
			t.Fatalf("REST bundle status %v, consumer %q, version %d", bundle.Status, bundle.ConsumerName, bundle.Version)
		}
	})
	if code := getJSON(t, srv.RESTURL()+maestro.ResourceBundlesPath+"/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("REST after Deleted: %d, want 404", code)
	}
}
