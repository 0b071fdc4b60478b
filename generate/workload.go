package generate

import (
	"embed"
	"fmt"
	"path"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kubetypes "k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/common"
	sdkutils "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/utils"

	"github.com/cereplay/cereplay/maestro"
)

// guestbookFiles are the 7 objects of Kubernetes' guestbook example, as the
// maestro-addon scale test ships them (test/performance/pkg/workloads),
// embedded so a generated trace never depends on files around the binary.
//
//go:embed guestbook/*.yaml
var guestbookFiles embed.FS

// guestbookOrder is the order in which the scale test puts the objects in
// every work; manifestConfigs and status ordinals follow it.
var guestbookOrder = []string{
	"namespace.yaml",
	"frontend-deployment.yaml",
	"frontend-service.yaml",
	"redis-master-deployment.yaml",
	"redis-master-service.yaml",
	"redis-slave-deployment.yaml",
	"redis-slave-service.yaml",
}

// Label keys and values the generated works carry.
const (
	// PerfTestLabel marks every work of the maestro-addon guestbook test.
	PerfTestLabel = "maestro.performance.test"
	// PerfTestGuestbook is PerfTestLabel's value for guestbook works.
	PerfTestGuestbook = "guest-book"
)

// Object is what the status model needs to know about one manifest of a
// work: its identity (the resourceMeta an agent reports) and, for
// Deployments, the replica count its status shows.
type Object struct {
	Group, Version, Kind, Resource string
	Name, Namespace                string
	Replicas                       int32 // Deployments only
	Feedback                       bool  // a manifest config asks for its .status
}

// Workload is the content every generated ManifestWork carries: the
// manifests, the manifestConfigs that ask for their status feedback, and
// the label that marks the work. It is built once and shared by all works.
type Workload struct {
	Manifests []workv1.Manifest
	Configs   []workv1.ManifestConfigOption
	Objects   []Object
	Labels    map[string]string

	DeleteOption *workv1.DeleteOption         // from a ManifestWork workload
	Executor     *workv1.ManifestWorkExecutor // from a ManifestWork workload
}

// Guestbook builds the scale test's workload: the 7 embedded guestbook
// objects, decoded with the typed Kubernetes scheme as the scale test does,
// each with a manifestConfig asking for `.status` as JSONPath feedback.
func Guestbook() (*Workload, error) {
	scheme := runtime.NewScheme()
	if err := appsv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("generate: apps/v1 scheme: %w", err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("generate: core/v1 scheme: %w", err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()

	w := &Workload{Labels: map[string]string{PerfTestLabel: PerfTestGuestbook}}
	for _, name := range guestbookOrder {
		file := path.Join("guestbook", name)
		raw, err := guestbookFiles.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("generate: read embedded %s: %w", file, err)
		}
		obj, gvk, err := decoder.Decode(raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("generate: decode embedded %s: %w", file, err)
		}
		o := Object{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Feedback: true}
		switch v := obj.(type) {
		case *corev1.Namespace:
			o.Resource, o.Name = "namespaces", v.Name
		case *corev1.Service:
			o.Resource, o.Name, o.Namespace = "services", v.Name, v.Namespace
		case *appsv1.Deployment:
			o.Resource, o.Name, o.Namespace = "deployments", v.Name, v.Namespace
			o.Replicas = 1
			if v.Spec.Replicas != nil {
				o.Replicas = *v.Spec.Replicas
			}
		default:
			return nil, fmt.Errorf("generate: embedded %s: unsupported kind %s", file, gvk.Kind)
		}
		w.Manifests = append(w.Manifests, workv1.Manifest{RawExtension: runtime.RawExtension{Object: obj}})
		w.Objects = append(w.Objects, o)
		w.Configs = append(w.Configs, workv1.ManifestConfigOption{
			ResourceIdentifier: workv1.ResourceIdentifier{
				Group: o.Group, Resource: o.Resource, Name: o.Name, Namespace: o.Namespace,
			},
			FeedbackRules: []workv1.FeedbackRule{{
				Type:      workv1.JSONPathsType,
				JsonPaths: []workv1.JsonPath{{Name: "status", Path: ".status"}},
			}},
		})
	}
	return w, nil
}

// SpecWork returns the ManifestWork as the SDK source client hands it to
// its codec on Create: uid = the derived resource id, namespace = the
// consumer, resourceVersion "0", generation 0 and the manifests encoded to
// raw JSON (ManifestWorkSourceClient.Create).
func (w *Workload) SpecWork(sourceID, cluster, name string) (*workv1.ManifestWork, error) {
	work := &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       cluster,
			UID:             kubetypes.UID(maestro.ResourceID(sourceID, cluster, name)),
			ResourceVersion: "0",
			Labels:          copyMap(w.Labels),
		},
		Spec: workv1.ManifestWorkSpec{
			Workload:        workv1.ManifestsTemplate{Manifests: append([]workv1.Manifest(nil), w.Manifests...)},
			ManifestConfigs: w.Configs,
			DeleteOption:    w.DeleteOption,
			Executor:        w.Executor,
		},
	}
	if err := sdkutils.EncodeManifests(work); err != nil {
		return nil, fmt.Errorf("generate: encode manifests of %s/%s: %w", cluster, name, err)
	}
	return work, nil
}

// StatusWork returns the ManifestWork as the work agent holds it when it
// reports status: named by the resource id (Maestro renames works to their
// id), generation = the resource version it received, the original-source
// label, the data-type annotation and the cleanup finalizer the agent adds.
func (w *Workload) StatusWork(cluster, resourceID string, generation int64, created time.Time, status workv1.ManifestWorkStatus) *workv1.ManifestWork {
	labels := copyMap(w.Labels)
	labels[common.CloudEventsOriginalSourceLabelKey] = maestro.BrokerSource
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{
			Name:              resourceID,
			Namespace:         cluster,
			UID:               kubetypes.UID(resourceID),
			Generation:        generation,
			CreationTimestamp: metav1.NewTime(created),
			Labels:            labels,
			Annotations:       map[string]string{common.CloudEventsDataTypeAnnotationKey: maestro.DataType},
			Finalizers:        []string{workv1.ManifestWorkFinalizer},
		},
		Status: status,
	}
}

func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}
