package maestro_test

import (
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/cereplay/cereplay/maestro"
)

// Build the create_request a source sends for one ManifestWork, then read
// its routing keys back from the wire bytes without decoding the data.
func Example() {
	work := &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "cluster-1"},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{
			RawExtension: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"default"}}`)},
		}}}},
	}
	ce, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, "my-source", work, maestro.EventOptions{
		ID:   "5f0c3a8e-2b0e-4a52-9d0e-7b7d3f0c9a11",
		Time: time.Date(2024, 12, 20, 8, 30, 0, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	wire, err := maestro.Marshal(ce)
	if err != nil {
		fmt.Println(err)
		return
	}
	k, err := maestro.ExtractKeys(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.Type == maestro.TypeSpecCreate, k.Source, k.ClusterName)
	fmt.Println(k.ResourceID == maestro.ResourceID("my-source", "cluster-1", "web"), k.ResourceVersion, k.Deleting)
	// Output:
	// true my-source cluster-1
	// true 0 false
}

// Mint the sequence ids an agent puts on its status events.
func ExampleSequenceIDs() {
	ids := maestro.NewSequenceIDs()
	a, _ := strconv.ParseInt(ids.Next(), 10, 64)
	b, _ := strconv.ParseInt(ids.Next(), 10, 64)
	fmt.Println("increasing:", b > a, "node:", a>>12&0x3ff)
	// Output: increasing: true node: 1
}
