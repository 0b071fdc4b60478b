package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubetypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	workinformers "open-cluster-management.io/api/client/work/informers/externalversions"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/options"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work"
	agentcodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/agent/codec"
	sourcecodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	workstore "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/store"
	grpcoptions "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc"

	"github.com/cereplay/cereplay/maestro"
)

func grpcConfig(addr string) *grpcoptions.GRPCOptions {
	return &grpcoptions.GRPCOptions{Dialer: &grpcoptions.GRPCDialer{URL: addr}}
}

// startSDKAgent runs the SDK's own work agent client for cluster against
// sim's broker port.
func startSDKAgent(t *testing.T, ctx context.Context, addr, cluster string) *work.ClientHolder {
	t.Helper()
	store := workstore.NewAgentInformerWatcherStore()
	opt := options.NewGenericClientOptions(grpcConfig(addr), agentcodec.NewManifestBundleCodec(), maestro.AgentID(cluster)).
		WithClientWatcherStore(store).
		WithClusterName(cluster)
	holder, err := work.NewAgentClientHolder(ctx, opt)
	if err != nil {
		t.Fatalf("agent client: %v", err)
	}
	factory := workinformers.NewSharedInformerFactoryWithOptions(holder.WorkInterface(), 5*time.Minute, workinformers.WithNamespace(cluster))
	informer := factory.Work().V1().ManifestWorks()
	go informer.Informer().Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		t.Fatal("agent informer did not sync")
	}
	return holder
}

// startSDKSource runs the SDK's own source client against sim's source port.
func startSDKSource(t *testing.T, ctx context.Context, addr, sourceID string) *work.ClientHolder {
	t.Helper()
	store := &lockedSourceStore{SourceInformerWatcherStore: workstore.NewSourceInformerWatcherStore(ctx)}
	opt := options.NewGenericClientOptions(grpcConfig(addr), sourcecodec.NewManifestBundleCodec(), sourceID+"-client").
		WithClientWatcherStore(store).
		WithSourceID(sourceID)
	holder, err := work.NewSourceClientHolder(ctx, opt)
	if err != nil {
		t.Fatalf("source client: %v", err)
	}
	factory := workinformers.NewSharedInformerFactoryWithOptions(holder.WorkInterface(), 5*time.Minute)
	informer := factory.Work().V1().ManifestWorks()
	store.SetInformer(informer.Informer())
	go informer.Informer().Run(ctx.Done())
	// The holder's client is shared by every namespace (ManifestWorks sets
	// its namespace), so wait until the informer's list and watch calls
	// are done before the test uses it: otherwise the race detector sees
	// the SDK's own data race.
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		t.Fatal("source informer did not sync")
	}
	return holder
}

// lockedSourceStore serialises SetInformer with HasInitiated: the SDK
// polls HasInitiated from a goroutine started by NewSourceClientHolder,
// while its documented usage calls SetInformer afterwards, a data race the
// race detector reports.
type lockedSourceStore struct {
	*workstore.SourceInformerWatcherStore
	mu sync.Mutex
}

func (l *lockedSourceStore) HasInitiated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.SourceInformerWatcherStore.HasInitiated()
}

func (l *lockedSourceStore) SetInformer(informer cache.SharedIndexInformer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.SourceInformerWatcherStore.SetInformer(informer)
}

func configMapWork(cluster, name string) *workv1.ManifestWork {
	cm := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","namespace":"default"},"data":{"k":"v"}}`, name)
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{
			Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: []byte(cm)}}},
		}},
	}
}

func statusPatch(t *testing.T, conds ...metav1.Condition) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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
	agent := startSDKAgent(t, ctx, srv.BrokerAddr(), cluster)
	source := startSDKSource(t, ctx, srv.SourceAddr(), sourceID)
	eventually(t, "agent and source streams", func() bool {
		return testutilGauge(t, srv, "sim_subscribers", "broker") == 1 && testutilGauge(t, srv, "sim_subscribers", "source") == 1
	})

	// create -> the agent receives it, named after the resource id.
	w := configMapWork(cluster, "work-1")
	if _, err := source.ManifestWorks(cluster).Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatalf("source create: %v", err)
	}
	id := maestro.ResourceID(sourceID, cluster, "work-1")
	var got *workv1.ManifestWork
	eventually(t, "agent receives the work", func() bool {
		var err error
		got, err = agent.ManifestWorks(cluster).Get(ctx, id, metav1.GetOptions{})
		return err == nil
	})
	if got.Generation != 1 {
		t.Errorf("agent work generation %d, want 1 (resource version)", got.Generation)
	}

	// agent status -> the source sees it, REST shows it.
	applied := metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "AppliedManifestWorkComplete",
		Message: "Apply manifest work complete", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}
	if _, err := agent.ManifestWorks(cluster).Patch(ctx, id, kubetypes.MergePatchType, statusPatch(t, applied), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("agent status patch: %v", err)
	}
	eventually(t, "source sees Applied", func() bool {
		sw, err := source.ManifestWorks(cluster).Get(ctx, "work-1", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(sw.Status.Conditions, "Applied")
	})
	var bundle bundleView
	if code := getJSON(t, srv.RESTURL()+maestro.ResourceBundlesPath+"/"+id, &bundle); code != http.StatusOK {
		t.Fatalf("REST resource bundle: %d", code)
	}
	conds, _ := bundle.Status["conditions"].([]any)
	if len(conds) != 1 || conds[0].(map[string]any)["type"] != "Applied" || bundle.ConsumerName != cluster || bundle.Version != 1 {
		t.Fatalf("REST bundle status %v, consumer %q, version %d", bundle.Status, bundle.ConsumerName, bundle.Version)
	}

	// delete -> the agent sees deletionTimestamp; Deleted -> gone.
	if err := source.ManifestWorks(cluster).Delete(ctx, "work-1", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("source delete: %v", err)
	}
	eventually(t, "agent sees deletionTimestamp", func() bool {
		aw, err := agent.ManifestWorks(cluster).Get(ctx, id, metav1.GetOptions{})
		return err == nil && aw.DeletionTimestamp != nil
	})
	deleted := metav1.Condition{Type: "Deleted", Status: metav1.ConditionTrue, Reason: "ManifestsDeleted",
		Message: "The manifests are deleted from the cluster " + cluster, LastTransitionTime: metav1.Now()}
	if _, err := agent.ManifestWorks(cluster).Patch(ctx, id, kubetypes.MergePatchType, statusPatch(t, applied, deleted), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("agent Deleted patch: %v", err)
	}
	eventually(t, "source sees the work removed", func() bool {
		_, err := source.ManifestWorks(cluster).Get(ctx, "work-1", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if code := getJSON(t, srv.RESTURL()+maestro.ResourceBundlesPath+"/"+id, nil); code != http.StatusNotFound {
		t.Fatalf("REST after Deleted: %d, want 404", code)
	}
}
