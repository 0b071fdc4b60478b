package generate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

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

	statusData [3]template // by Phase; slots: applied, available, ready
	statusHash [3]template // the JSON statushash is taken over, same slots

	cache map[statusKey]statusEntry

	// scratch, reused between events
	meta, data, hashJSON []byte
	times                [3][]byte
	attrs                [10]wire.Attr
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

	phases := []Phase{PhaseApplied, PhaseAvailable}
	if shape == StatusScaleTest {
		phases = []Phase{PhaseAvailable}
	}
	times := StatusTimes{Applied: phApplied, Available: phAvailable, Ready: phReady}
	timePH := []string{rfc3339(phApplied), rfc3339(phAvailable), rfc3339(phReady)}
	for _, ph := range phases {
		st, err := w.Status(shape, ph, times, int64(generation))
		if err != nil {
			return nil, err
		}
		work := w.StatusWork(phCluster, phRID, int64(generation), phCreated, st)
		if ph == PhaseAvailable {
			meta, err := json.Marshal(work.ObjectMeta)
			if err != nil {
				return nil, fmt.Errorf("generate: marshal status metadata: %w", err)
			}
			e.statusMeta = newTemplate(meta, phRID, phCluster, rfc3339(phCreated))
		}
		data, err := json.Marshal(&payload.ManifestBundleStatus{Conditions: st.Conditions, ResourceStatus: st.ResourceStatus.Manifests})
		if err != nil {
			return nil, fmt.Errorf("generate: marshal status data: %w", err)
		}
		e.statusData[ph] = newTemplate(data, timePH...)
		hashJSON, err := statusHashJSON(work)
		if err != nil {
			return nil, err
		}
		e.statusHash[ph] = newTemplate(hashJSON, timePH...)
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

// specInput is what differs between two works' spec.create_request.
type specInput struct {
	cluster, workName, resourceID []byte
	id                            []byte
	at                            time.Time
}

// appendSpec appends the pbv1.CloudEvent bytes of the work's
// spec.create_request, as the SDK source client publishes it.
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
	return wire.AppendEvent(dst, &wire.Event{
		ID: in.id, Source: e.sourceID, SpecVersion: specVersion, Type: typeSpecCreate,
		Attrs: a, Data: e.specData,
	})
}

// statusInput is what differs between two status.update_request events.
type statusInput struct {
	cluster, agentID, resourceID []byte
	id, sequenceID               []byte
	at, created                  time.Time
	phase                        Phase
	times                        StatusTimes
}

// appendStatus appends the pbv1.CloudEvent bytes of an agent's
// status.update_request, as the SDK agent codec publishes it.
func (e *encoder) appendStatus(dst []byte, in *statusInput) ([]byte, error) {
	st, err := e.status(in.phase, in.times)
	if err != nil {
		return dst, err
	}
	e.times[0] = in.created.UTC().AppendFormat(e.times[0][:0], time.RFC3339)
	e.meta = e.statusMeta.fill(e.meta[:0], in.resourceID, in.cluster, e.times[0])
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
	return wire.AppendEvent(dst, &wire.Event{
		ID: in.id, Source: in.agentID, SpecVersion: specVersion, Type: typeStatusUpdate,
		Attrs: a, Data: st.data,
	}), nil
}

// status returns the data and statushash of a status, rendering them only
// the first time a content is seen.
func (e *encoder) status(ph Phase, t StatusTimes) (statusEntry, error) {
	key := statusKey{phase: ph, applied: t.Applied.Unix(), available: t.Available.Unix(), ready: t.Ready.Unix()}
	if st, ok := e.cache[key]; ok {
		return st, nil
	}
	if int(ph) >= len(e.statusData) || e.statusData[ph].parts == nil {
		return statusEntry{}, fmt.Errorf("generate: status shape %s has no phase %d", e.shape, ph)
	}
	e.times[0] = t.Applied.UTC().AppendFormat(e.times[0][:0], time.RFC3339)
	e.times[1] = t.Available.UTC().AppendFormat(e.times[1][:0], time.RFC3339)
	e.times[2] = t.Ready.UTC().AppendFormat(e.times[2][:0], time.RFC3339)
	t0, t1, t2 := e.times[0], e.times[1], e.times[2]
	data := e.statusData[ph].fill(make([]byte, 0, e.statusData[ph].size(t0, t1, t2)), t0, t1, t2)
	e.hashJSON = e.statusHash[ph].fill(e.hashJSON[:0], t0, t1, t2)
	sum := sha256.Sum256(e.hashJSON)
	st := statusEntry{data: data, hash: []byte(hex.EncodeToString(sum[:]))}
	if len(e.cache) >= maxCachedStatuses {
		clear(e.cache)
	}
	e.cache[key] = st
	return st, nil
}

var (
	specVersion      = []byte(maestro.SpecVersion)
	typeSpecCreate   = []byte(maestro.TypeSpecCreate)
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
