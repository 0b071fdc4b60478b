package generate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"

	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// Placeholders the templates are cut at. They are strings no real value
// takes: names are RFC 1123 labels, ids are UUIDs, times are the trace's.
const (
	phCluster  = "@@cluster@@"
	phWorkName = "@@work@@"
	phRID      = "@@resourceid@@"
)

// Placeholder instants for the times a status or metadata shows.
var (
	phCreated   = time.Date(1971, 1, 1, 1, 1, 1, 0, time.UTC)
	phApplied   = time.Date(1972, 2, 2, 2, 2, 2, 0, time.UTC)
	phAvailable = time.Date(1973, 3, 3, 3, 3, 3, 0, time.UTC)
	phReady     = time.Date(1974, 4, 4, 4, 4, 4, 0, time.UTC)
	phDeleted   = time.Date(1975, 5, 5, 5, 5, 5, 0, time.UTC)
)

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// logTracingEmpty is the ce-logtracing value of a work without log-tracing
// annotations (sdk-go logging.LogTracingFromObjectToEvent).
var logTracingEmpty = []byte("{}")

// encoder builds the wire bytes of one workload's events fast: it marshals
// the real objects once, with placeholders where works differ, and then
// only fills holes and appends protobuf fields (see template). Its output
// is tested to be byte-identical to the SDK codecs' full marshal.
// An encoder is not safe for concurrent use.
type encoder struct {
	sourceID   []byte
	shape      StatusShape
	generation int32

	specData   []byte   // the ManifestBundle JSON: the same for every work
	specMeta   template // slots: work name, cluster, resource id
	statusMeta template // slots: resource id, cluster, creation time

	// A delete's: slots of specMeta, then the deletion time; slots of
	// statusMeta, then the deletion time.
	deleteMeta, deletedMeta template

	statusData [4]template // by Phase; slots: applied, available, ready, deleted, cluster
	statusHash [4]template // the JSON statushash is taken over, same slots

	cache map[statusKey]statusEntry

	// scratch, reused between events
	meta, hashJSON, hashHex []byte
	times                   [4][]byte
	attrs                   [10]wire.Attr

	// The values of the status last rendered (statusData's and
	// statusHash's slots), kept for a Deleted status's data, which is
	// filled straight into the event.
	statusTimes [4][]byte
	statusVals  [5][]byte
}

// statusKey is what a status's content depends on: phase and the seconds
// of the times it shows.
type statusKey struct {
	phase                     Phase
	applied, available, ready int64
}

type statusEntry struct {
	data []byte
	hash []byte // lower-case hex sha256, as the SDK's statushash
}

// maxCachedStatuses bounds the status cache; times only move forward, so
// dropping it all now and then costs a few re-renders.
const maxCachedStatuses = 4096

func newEncoder(w *Workload, sourceID string, shape StatusShape, generation int32) (*encoder, error) {
	e := &encoder{
		sourceID:   []byte(sourceID),
		shape:      shape,
		generation: generation,
		cache:      make(map[statusKey]statusEntry),
	}

	spec, err := w.SpecWork(sourceID, phCluster, phWorkName)
	if err != nil {
		return nil, err
	}
	e.specData, err = json.Marshal(&payload.ManifestBundle{
		Manifests:       spec.Spec.Workload.Manifests,
		DeleteOption:    spec.Spec.DeleteOption,
		ManifestConfigs: spec.Spec.ManifestConfigs,
		Executer:        spec.Spec.Executor,
	})
	if err != nil {
		return nil, fmt.Errorf("generate: marshal spec data: %w", err)
	}
	spec.UID = phRID
	meta, err := json.Marshal(spec.ObjectMeta)
	if err != nil {
		return nil, fmt.Errorf("generate: marshal spec metadata: %w", err)
	}
	e.specMeta = newTemplate(meta, phWorkName, phCluster, phRID)
	// The SDK source client deletes the work it cached at create, with
	// the deletion time set (ManifestWorkSourceClient.Delete).
	spec.DeletionTimestamp = &metav1.Time{Time: phDeleted}
	if meta, err = json.Marshal(spec.ObjectMeta); err != nil {
		return nil, fmt.Errorf("generate: marshal spec metadata: %w", err)
	}
	e.deleteMeta = newTemplate(meta, phWorkName, phCluster, phRID, rfc3339(phDeleted))

	phases := []Phase{PhaseApplied, PhaseAvailable, PhaseDeleted}
	if shape == StatusScaleTest {
		phases = []Phase{PhaseAvailable, PhaseDeleted}
	}
	times := StatusTimes{Applied: phApplied, Available: phAvailable, Ready: phReady}
	slots := []string{rfc3339(phApplied), rfc3339(phAvailable), rfc3339(phReady), rfc3339(phDeleted), phCluster}
	for _, ph := range phases {
		var st workv1.ManifestWorkStatus
		if ph == PhaseDeleted {
			// The agent's last status: the one it held, plus Deleted.
			if st, err = w.Status(shape, PhaseAvailable, times, int64(generation)); err != nil {
				return nil, err
			}
			st.Conditions = append(st.Conditions, deletedCondition(phCluster, phDeleted))
		} else if st, err = w.Status(shape, ph, times, int64(generation)); err != nil {
			return nil, err
		}
		work := w.StatusWork(phCluster, phRID, int64(generation), phCreated, st)
		switch ph {
		case PhaseAvailable:
			meta, err := json.Marshal(work.ObjectMeta)
			if err != nil {
				return nil, fmt.Errorf("generate: marshal status metadata: %w", err)
			}
			e.statusMeta = newTemplate(meta, phRID, phCluster, rfc3339(phCreated))
		case PhaseDeleted:
			// The agent reports Deleted once the work is being deleted and
			// its cleanup finalizer is gone.
			work.DeletionTimestamp = &metav1.Time{Time: phDeleted}
			work.Finalizers = nil
			meta, err := json.Marshal(work.ObjectMeta)
			if err != nil {
				return nil, fmt.Errorf("generate: marshal status metadata: %w", err)
			}
			e.deletedMeta = newTemplate(meta, phRID, phCluster, rfc3339(phCreated), rfc3339(phDeleted))
		}
		data, err := json.Marshal(&payload.ManifestBundleStatus{Conditions: st.Conditions, ResourceStatus: st.ResourceStatus.Manifests})
		if err != nil {
			return nil, fmt.Errorf("generate: marshal status data: %w", err)
		}
		e.statusData[ph] = newTemplate(data, slots...)
		hashJSON, err := statusHashJSON(work)
		if err != nil {
			return nil, err
		}
		e.statusHash[ph] = newTemplate(hashJSON, slots...)
	}
	return e, nil
}

// statusHashJSON is the JSON the SDK's statushash.StatusHash takes the
// sha256 of: the work's .status through the unstructured converter, so
// keys come sorted and nested as in the ManifestWork.
func statusHashJSON(work *workv1.ManifestWork) ([]byte, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(work)
	if err != nil {
		return nil, fmt.Errorf("generate: work to unstructured: %w", err)
	}
	status, found, err := unstructured.NestedMap(u, "status")
	if err != nil || !found {
		return nil, fmt.Errorf("generate: work has no status map (found=%v): %v", found, err)
	}
	b, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("generate: marshal status for hash: %w", err)
	}
	return b, nil
}

// specInput is what differs between two works' spec events.
type specInput struct {
	cluster, workName, resourceID []byte
	id                            []byte
	at                            time.Time
	update                        bool // spec.update_request (the data of e's generation), not create
}

// appendSpec appends the pbv1.CloudEvent bytes of the work's
// spec.create_request or spec.update_request, as the SDK source client
// publishes it (its Patch sends the whole work, resourceversion 0: "the
// latest").
func (e *encoder) appendSpec(dst []byte, in *specInput) []byte {
	e.meta = e.specMeta.fill(e.meta[:0], in.workName, in.cluster, in.resourceID)
	a := e.attrs[:8]
	a[0] = wire.Attr{Key: maestro.AttrClusterName, Kind: wire.AttrString, Str: in.cluster}
	a[1] = wire.Attr{Key: maestro.AttrLogTracing, Kind: wire.AttrString, Str: logTracingEmpty}
	a[2] = wire.Attr{Key: maestro.AttrMetadata, Kind: wire.AttrString, Str: e.meta}
	a[3] = wire.Attr{Key: maestro.AttrOriginalSource, Kind: wire.AttrString}
	a[4] = wire.Attr{Key: maestro.AttrResourceID, Kind: wire.AttrString, Str: in.resourceID}
	a[5] = wire.Attr{Key: maestro.AttrResourceVersion, Kind: wire.AttrInteger, Num: 0}
	a[6] = timeAttr(in.at)
	a[7] = wire.Attr{Key: maestro.AttrContentType, Kind: wire.AttrString, Str: contentTypeJSON}
	typ := typeSpecCreate
	if in.update {
		typ = typeSpecUpdate
	}
	return wire.AppendEvent(dst, &wire.Event{
		ID: in.id, Source: e.sourceID, SpecVersion: specVersion, Type: typ,
		Attrs: a, Data: e.specData,
	})
}

// appendDelete appends the pbv1.CloudEvent bytes of the work's
// spec.delete_request, as the SDK source client publishes it: no data,
// the deletion time in ce-deletiontimestamp and in the metadata.
func (e *encoder) appendDelete(dst []byte, in *specInput) []byte {
	e.times[3] = in.at.UTC().AppendFormat(e.times[3][:0], time.RFC3339)
	e.meta = e.deleteMeta.fill(e.meta[:0], in.workName, in.cluster, in.resourceID, e.times[3])
	a := e.attrs[:8]
	a[0] = wire.Attr{Key: maestro.AttrClusterName, Kind: wire.AttrString, Str: in.cluster}
	a[1] = wire.Attr{Key: maestro.AttrDeletionTimestamp, Kind: wire.AttrTimestamp, Sec: in.at.Unix(), Nanos: int32(in.at.Nanosecond())}
	a[2] = wire.Attr{Key: maestro.AttrLogTracing, Kind: wire.AttrString, Str: logTracingEmpty}
	a[3] = wire.Attr{Key: maestro.AttrMetadata, Kind: wire.AttrString, Str: e.meta}
	a[4] = wire.Attr{Key: maestro.AttrOriginalSource, Kind: wire.AttrString}
	a[5] = wire.Attr{Key: maestro.AttrResourceID, Kind: wire.AttrString, Str: in.resourceID}
	a[6] = wire.Attr{Key: maestro.AttrResourceVersion, Kind: wire.AttrInteger, Num: 0}
	a[7] = timeAttr(in.at)
	return wire.AppendEvent(dst, &wire.Event{
		ID: in.id, Source: e.sourceID, SpecVersion: specVersion, Type: typeSpecDelete, Attrs: a,
	})
}

// statusInput is what differs between two status.update_request events.
type statusInput struct {
	cluster, agentID, resourceID []byte
	id, sequenceID               []byte
	at, created                  time.Time
	phase                        Phase
	times                        StatusTimes
	deleted                      time.Time // PhaseDeleted: when the work was marked deleting
}

// appendStatus appends the pbv1.CloudEvent bytes of an agent's
// status.update_request, as the SDK agent codec publishes it.
func (e *encoder) appendStatus(dst []byte, in *statusInput) ([]byte, error) {
	st, err := e.status(in.phase, in.times, in.at, in.cluster)
	if err != nil {
		return dst, err
	}
	e.times[0] = in.created.UTC().AppendFormat(e.times[0][:0], time.RFC3339)
	if in.phase == PhaseDeleted {
		e.times[3] = in.deleted.UTC().AppendFormat(e.times[3][:0], time.RFC3339)
		e.meta = e.deletedMeta.fill(e.meta[:0], in.resourceID, in.cluster, e.times[0], e.times[3])
	} else {
		e.meta = e.statusMeta.fill(e.meta[:0], in.resourceID, in.cluster, e.times[0])
	}
	a := e.attrs[:10]
	a[0] = wire.Attr{Key: maestro.AttrClusterName, Kind: wire.AttrString, Str: in.cluster}
	a[1] = wire.Attr{Key: maestro.AttrLogTracing, Kind: wire.AttrString, Str: logTracingEmpty}
	a[2] = wire.Attr{Key: maestro.AttrMetadata, Kind: wire.AttrString, Str: e.meta}
	a[3] = wire.Attr{Key: maestro.AttrOriginalSource, Kind: wire.AttrString, Str: brokerSource}
	a[4] = wire.Attr{Key: maestro.AttrResourceID, Kind: wire.AttrString, Str: in.resourceID}
	a[5] = resourceVersionAttr(e.generation)
	a[6] = wire.Attr{Key: maestro.AttrSequenceID, Kind: wire.AttrString, Str: in.sequenceID}
	a[7] = wire.Attr{Key: maestro.AttrStatusHash, Kind: wire.AttrString, Str: st.hash}
	a[8] = timeAttr(in.at)
	a[9] = wire.Attr{Key: maestro.AttrContentType, Kind: wire.AttrString, Str: contentTypeJSON}
	dst = wire.AppendEvent(dst, &wire.Event{
		ID: in.id, Source: in.agentID, SpecVersion: specVersion, Type: typeStatusUpdate,
		Attrs: a, Data: st.data,
	})
	if st.data == nil {
		// A Deleted status: its data is used once, so it is filled where
		// it goes rather than built apart and copied.
		t := &e.statusData[in.phase]
		dst = wire.AppendDataHead(dst, t.size(e.statusVals[:]...))
		dst = t.fill(dst, e.statusVals[:]...)
	}
	return dst, nil
}

// status returns the data and statushash of a status, rendering them only
// the first time a content is seen. A Deleted status names its cluster,
// so it is rendered every time, and its data is left for the caller to
// fill from statusVals (its entry's data is nil; its hash is valid until
// the next status).
func (e *encoder) status(ph Phase, t StatusTimes, deleted time.Time, cluster []byte) (statusEntry, error) {
	key := statusKey{phase: ph, applied: t.Applied.Unix(), available: t.Available.Unix(), ready: t.Ready.Unix()}
	if ph != PhaseDeleted {
		if st, ok := e.cache[key]; ok {
			return st, nil
		}
	}
	if int(ph) >= len(e.statusData) || e.statusData[ph].parts == nil {
		return statusEntry{}, fmt.Errorf("generate: status shape %s has no phase %d", e.shape, ph)
	}
	for i, at := range [...]time.Time{t.Applied, t.Available, t.Ready, deleted} {
		e.statusTimes[i] = at.UTC().AppendFormat(e.statusTimes[i][:0], time.RFC3339)
		e.statusVals[i] = e.statusTimes[i]
	}
	e.statusVals[4] = cluster
	v := e.statusVals[:]
	e.hashJSON = e.statusHash[ph].fill(e.hashJSON[:0], v...)
	sum := sha256.Sum256(e.hashJSON)
	if ph == PhaseDeleted {
		e.hashHex = hex.AppendEncode(e.hashHex[:0], sum[:])
		return statusEntry{hash: e.hashHex}, nil
	}
	st := statusEntry{
		data: e.statusData[ph].fill(make([]byte, 0, e.statusData[ph].size(v...)), v...),
		hash: hex.AppendEncode(nil, sum[:]),
	}
	if len(e.cache) >= maxCachedStatuses {
		clear(e.cache)
	}
	e.cache[key] = st
	return st, nil
}

var (
	specVersion      = []byte(maestro.SpecVersion)
	typeSpecCreate   = []byte(maestro.TypeSpecCreate)
	typeSpecUpdate   = []byte(maestro.TypeSpecUpdate)
	typeSpecDelete   = []byte(maestro.TypeSpecDelete)
	typeStatusUpdate = []byte(maestro.TypeStatusUpdate)
	contentTypeJSON  = []byte(maestro.ContentTypeJSON)
	brokerSource     = []byte(maestro.BrokerSource)
)

func timeAttr(t time.Time) wire.Attr {
	return wire.Attr{Key: maestro.AttrTime, Kind: wire.AttrTimestamp, Sec: t.Unix(), Nanos: int32(t.Nanosecond())}
}

// resourceVersionAttr writes a version as the SDK does: ce_integer. The
// generator keeps versions within int32, as the SDK must.
func resourceVersionAttr(v int32) wire.Attr {
	return wire.Attr{Key: maestro.AttrResourceVersion, Kind: wire.AttrInteger, Num: v}
}
