// Package sdkclient runs the SDK's own work agent and source clients
// (open-cluster-management.io/sdk-go) against a Maestro gRPC port, for the
// tests that check cereplay's servers and proxy behave like Maestro to
// them.
package sdkclient

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testwait"

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

// StartAgent runs the SDK's own work agent client for cluster against the
// broker port at addr; it stops with ctx.
func StartAgent(t testing.TB, ctx context.Context, addr, cluster string) *work.ClientHolder {
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

// StartSource runs the SDK's own source client against the source port at
// addr; it stops with ctx.
func StartSource(t testing.TB, ctx context.Context, addr, sourceID string) *work.ClientHolder {
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

func ConfigMapWork(cluster, name string) *workv1.ManifestWork {
	cm := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","namespace":"default"},"data":{"k":"v"}}`, name)
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cluster},
		Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{
			Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: []byte(cm)}}},
		}},
	}
}

// StatusPatch is a merge patch setting a work's status conditions.
func StatusPatch(t testing.TB, conds ...metav1.Condition) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Lifecycle drives one work through its whole life with the SDK clients:
// the source creates it and the agent receives it (generation 1, named
// after its resource id); the agent reports Applied and the source sees
// it; afterApplied runs then, with the resource id; the source deletes it
// and the agent sees the deletion; the agent reports Deleted and the
// source sees the work removed. It returns the resource id.
func Lifecycle(t testing.TB, ctx context.Context, agent, source *work.ClientHolder, cluster, sourceID string, afterApplied func(id string)) string {
	t.Helper()
	if _, err := source.ManifestWorks(cluster).Create(ctx, ConfigMapWork(cluster, "work-1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("source create: %v", err)
	}
	id := maestro.ResourceID(sourceID, cluster, "work-1")
	var got *workv1.ManifestWork
	testwait.Until(t, "agent receives the work", func() bool {
		var err error
		got, err = agent.ManifestWorks(cluster).Get(ctx, id, metav1.GetOptions{})
		return err == nil
	})
	if got.Generation != 1 {
		t.Errorf("agent work generation %d, want 1 (resource version)", got.Generation)
	}
	applied := metav1.Condition{Type: "Applied", Status: metav1.ConditionTrue, Reason: "AppliedManifestWorkComplete",
		Message: "Apply manifest work complete", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}
	if _, err := agent.ManifestWorks(cluster).Patch(ctx, id, kubetypes.MergePatchType, StatusPatch(t, applied), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("agent status patch: %v", err)
	}
	testwait.Until(t, "source sees Applied", func() bool {
		sw, err := source.ManifestWorks(cluster).Get(ctx, "work-1", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(sw.Status.Conditions, "Applied")
	})
	if afterApplied != nil {
		afterApplied(id)
	}
	if err := source.ManifestWorks(cluster).Delete(ctx, "work-1", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("source delete: %v", err)
	}
	testwait.Until(t, "agent sees deletionTimestamp", func() bool {
		aw, err := agent.ManifestWorks(cluster).Get(ctx, id, metav1.GetOptions{})
		return err == nil && aw.DeletionTimestamp != nil
	})
	deleted := metav1.Condition{Type: "Deleted", Status: metav1.ConditionTrue, Reason: "ManifestsDeleted",
		Message: "The manifests are deleted from the cluster " + cluster, LastTransitionTime: metav1.Now()}
	if _, err := agent.ManifestWorks(cluster).Patch(ctx, id, kubetypes.MergePatchType, StatusPatch(t, applied, deleted), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("agent Deleted patch: %v", err)
	}
	testwait.Until(t, "source sees the work removed", func() bool {
		_, err := source.ManifestWorks(cluster).Get(ctx, "work-1", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	return id
}
