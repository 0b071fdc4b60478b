package maestro

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubetypes "k8s.io/apimachinery/pkg/types"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/common"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/statushash"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/utils"
	agentcodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/agent/codec"
	sourcecodec "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/payload"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"
)

// ResourceVersion is one entry of a spec resync request: the version of a
// resource the agent holds.
type ResourceVersion = payload.ResourceVersion

// ResourceStatusHash is one entry of a status resync request: the hash of
// the status a source holds for a resource.
type ResourceStatusHash = payload.ResourceStatusHash

// EventOptions fixes the id and time of a built event, so that generated
// traces are reproducible. Zero values mean what the SDK does: a new uuid4
// and the current time.
type EventOptions struct {
	ID   string
	Time time.Time
}

// ErrEventType means a builder was given an event type it cannot build.
var ErrEventType = errors.New("maestro: unsupported event type")

// ErrWork means a ManifestWork lacks what the protocol needs.
var ErrWork = errors.New("maestro: invalid manifestwork")

// NewSpecEvent builds the spec event a source sends for a ManifestWork
// (eventType TypeSpecCreate, TypeSpecUpdate or TypeSpecDelete), exactly as
// the SDK source client does: it prepares a copy of the work the way
// ManifestWorkSourceClient.Create/Patch/Delete do, encodes it with the SDK
// source codec and writes it in binary mode. work.Namespace is the consumer
// (cluster) name. For a delete the deletion timestamp is o.Time (or now).
func NewSpecEvent(eventType, sourceID string, work *workv1.ManifestWork, o EventOptions) (*pbv1.CloudEvent, error) {
	if work == nil {
		return nil, fmt.Errorf("%w: nil work", ErrWork)
	}
	if work.Namespace == "" || work.Name == "" {
		return nil, fmt.Errorf("%w: %q/%q: namespace (consumer) and name are required", ErrWork, work.Namespace, work.Name)
	}
	w := work.DeepCopy()
	switch eventType {
	case TypeSpecCreate:
		// Create always derives the uid; update and delete use the work
		// the client cached at create time, which already carries it.
		w.UID = kubetypes.UID(ResourceID(sourceID, w.Namespace, w.Name))
	case TypeSpecUpdate, TypeSpecDelete:
		if w.UID == "" {
			w.UID = kubetypes.UID(ResourceID(sourceID, w.Namespace, w.Name))
		}
	default:
		return nil, fmt.Errorf("%w: %q is not a spec create, update or delete", ErrEventType, eventType)
	}
	rv, generation, err := workResourceVersion(w)
	if err != nil {
		return nil, err
	}
	w.Generation, w.ResourceVersion = generation, rv

	if eventType == TypeSpecDelete {
		at := o.Time
		if at.IsZero() {
			at = time.Now()
		}
		w.DeletionTimestamp = &metav1.Time{Time: at}
	} else {
		if err := utils.EncodeManifests(w); err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %w", ErrWork, w.Namespace, w.Name, err)
		}
		if errs := utils.ValidateWork(w); len(errs) != 0 {
			return nil, fmt.Errorf("%w: %s/%s: %w", ErrWork, w.Namespace, w.Name, errs.ToAggregate())
		}
	}
	ceType, err := types.ParseCloudEventsType(eventType)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventType, err)
	}
	evt, err := sourcecodec.NewManifestBundleCodec().Encode(sourceID, *ceType, w)
	if err != nil {
		return nil, fmt.Errorf("maestro: encode %s for %s/%s: %w", eventType, w.Namespace, w.Name, err)
	}
	return finish(evt, o)
}

// NewStatusEvent builds the status.update_request an agent sends for a
// work, exactly as the SDK agent codec does: resource id from work.UID,
// resourceversion from work.Generation, status hash and data from
// work.Status, metadata from work.ObjectMeta (the agent's view, see
// AgentWork). seq is the sequence id (see SequenceIDs); it replaces the
// one the codec mints from its own generator.
func NewStatusEvent(cluster string, work *workv1.ManifestWork, seq string, o EventOptions) (*pbv1.CloudEvent, error) {
	if work == nil {
		return nil, fmt.Errorf("%w: nil work", ErrWork)
	}
	if work.UID == "" {
		return nil, fmt.Errorf("%w: %s/%s: uid (the resource id) is required", ErrWork, cluster, work.Name)
	}
	if seq == "" {
		return nil, fmt.Errorf("maestro: status of %s: empty sequence id", work.UID)
	}
	w := work.DeepCopy()
	w.Namespace = cluster
	if _, ok := w.Labels[common.CloudEventsOriginalSourceLabelKey]; !ok {
		// The agent labels every work it receives with the event source,
		// which is always Maestro's broker.
		if w.Labels == nil {
			w.Labels = map[string]string{}
		}
		w.Labels[common.CloudEventsOriginalSourceLabelKey] = BrokerSource
	}
	ceType, err := types.ParseCloudEventsType(TypeStatusUpdate)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventType, err)
	}
	evt, err := agentcodec.NewManifestBundleCodec().Encode(AgentID(cluster), *ceType, w)
	if err != nil {
		return nil, fmt.Errorf("maestro: encode status of %s: %w", work.UID, err)
	}
	evt.SetExtension(types.ExtensionStatusUpdateSequenceID, seq)
	return finish(evt, o)
}

// NewSpecResyncRequest builds the spec.resync_request an agent sends after
// subscribing (generic agent client Resync with Maestro's source ""). An
// empty list asks for every resource of the cluster.
func NewSpecResyncRequest(cluster string, versions []ResourceVersion, o EventOptions) (*pbv1.CloudEvent, error) {
	if versions == nil {
		versions = []ResourceVersion{} // the SDK sends [], never null
	}
	ceType, err := types.ParseCloudEventsType(TypeSpecResyncRequest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventType, err)
	}
	evt := types.NewEventBuilder(AgentID(cluster), *ceType).
		WithOriginalSource("").
		WithClusterName(cluster).
		NewEvent()
	if err := evt.SetData(cloudevents.ApplicationJSON, &payload.ResourceVersionList{Versions: versions}); err != nil {
		return nil, fmt.Errorf("maestro: spec resync request of %s: %w", cluster, err)
	}
	return finish(&evt, o)
}

// NewStatusResyncRequest builds the status.resync_request a source sends
// (generic source client Resync for all clusters). An empty list asks for
// the status of every resource of the source.
func NewStatusResyncRequest(sourceID string, hashes []ResourceStatusHash, o EventOptions) (*pbv1.CloudEvent, error) {
	if hashes == nil {
		hashes = []ResourceStatusHash{}
	}
	ceType, err := types.ParseCloudEventsType(TypeStatusResyncRequest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventType, err)
	}
	evt := types.NewEventBuilder(sourceID, *ceType).WithClusterName("").NewEvent()
	if err := evt.SetData(cloudevents.ApplicationJSON, &payload.ResourceStatusHashList{Hashes: hashes}); err != nil {
		return nil, fmt.Errorf("maestro: status resync request of %s: %w", sourceID, err)
	}
	return finish(&evt, o)
}

// StatusHash is the SDK status hash of a ManifestWork status (sha256 of its
// JSON), the value an agent sends in ce-statushash and a source lists in a
// status resync request.
func StatusHash(status workv1.ManifestWorkStatus) (string, error) {
	h, err := statushash.StatusHash(&workv1.ManifestWork{Status: status})
	if err != nil {
		return "", fmt.Errorf("maestro: status hash: %w", err)
	}
	return h, nil
}

// finish applies the fixed id and time and writes the event in binary mode.
func finish(evt *cloudevents.Event, o EventOptions) (*pbv1.CloudEvent, error) {
	if o.ID != "" {
		evt.SetID(o.ID)
	}
	if !o.Time.IsZero() {
		evt.SetTime(o.Time)
	}
	return FromCloudEvent(evt)
}

// workResourceVersion mirrors the SDK source client's getWorkResourceVersion:
// the resourceversion annotation wins, then the work's generation; the
// object resourceVersion defaults to "0" (version not kept by the source).
func workResourceVersion(w *workv1.ManifestWork) (string, int64, error) {
	var generation int64
	rv, ok := w.Annotations[common.CloudEventsResourceVersionAnnotationKey]
	if ok {
		var err error
		if generation, err = strconv.ParseInt(rv, 10, 64); err != nil {
			return "", 0, fmt.Errorf("%w: %s/%s: annotation %s: %w", ErrWork, w.Namespace, w.Name,
				common.CloudEventsResourceVersionAnnotationKey, err)
		}
	}
	if generation == 0 {
		generation = w.Generation
	}
	if rv == "" {
		rv = w.ResourceVersion
		if rv == "" {
			rv = "0"
		}
	}
	return rv, generation, nil
}

// AgentWork decodes a spec event received by an agent into the work the
// agent keeps, exactly as the SDK agent codec does: name and uid = resource
// id, namespace = cluster, generation = resourceversion, the originalsource
// label and datatype annotation set, and for a deleting event a deletion
// timestamp and the cleanup finalizer. Its metadata is what the agent's
// status events carry.
func AgentWork(spec *pbv1.CloudEvent) (*workv1.ManifestWork, error) {
	evt, err := ToCloudEvent(spec)
	if err != nil {
		return nil, err
	}
	w, err := agentcodec.NewManifestBundleCodec().Decode(evt)
	if err != nil {
		return nil, fmt.Errorf("maestro: decode spec event %q for the agent: %w", spec.GetId(), err)
	}
	return w, nil
}
