package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/bwmarrin/snowflake"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"

	"github.com/cereplay/cereplay/maestro"
)

// statusRecord is an agent's status event as stored: its context (with the
// agent's id, time, source and extensions) and its data, kept verbatim.
type statusRecord struct {
	context    event.EventContext
	data       blob
	SequenceID string
	StatusHash string
}

// sameAs reports an identical status event, which Maestro's UpdateStatus
// ignores (its reflect.DeepEqual on the stored JSON).
func (st *statusRecord) sameAs(o *statusRecord) bool {
	return st.context.GetID() == o.context.GetID() &&
		st.SequenceID == o.SequenceID &&
		st.StatusHash == o.StatusHash &&
		st.data == o.data
}

// statusRequest is a decoded agent status (Maestro's codec Decode).
type statusRequest struct {
	ResourceID string
	Consumer   string
	Version    int64
	Record     *statusRecord
	Deleted    bool
}

// decodeStatus reads what Maestro requires of an agent's status event:
// resourceid, resourceversion, clustername and originalsource "maestro",
// and data that decodes as a ManifestBundleStatus.
func decodeStatus(evt *cloudevents.Event, checked *statusCache) (statusRequest, error) {
	ext := evt.Extensions()
	id, err := cetypes.ToString(ext[types.ExtensionResourceID])
	if err != nil {
		return statusRequest{}, fmt.Errorf("failed to get resourceid extension: %v", err)
	}
	version, err := cetypes.ToInteger(ext[types.ExtensionResourceVersion])
	if err != nil {
		return statusRequest{}, fmt.Errorf("failed to get resourceversion extension: %v", err)
	}
	cluster, err := cetypes.ToString(ext[types.ExtensionClusterName])
	if err != nil {
		return statusRequest{}, fmt.Errorf("failed to get clustername extension: %v", err)
	}
	original, err := cetypes.ToString(ext[types.ExtensionOriginalSource])
	if err != nil {
		return statusRequest{}, fmt.Errorf("failed to get originalsource extension: %v", err)
	}
	if original != maestro.BrokerSource {
		return statusRequest{}, fmt.Errorf("unmatched original source id %s for resource %s", original, id)
	}
	data := newBlob(bytes.TrimSpace(evt.Data()))
	deleted, err := checked.check(data)
	if err != nil {
		return statusRequest{}, err
	}
	rec := &statusRecord{context: evt.Context.Clone(), data: data}
	if v, ok := ext[types.ExtensionStatusUpdateSequenceID]; ok {
		rec.SequenceID, _ = cetypes.ToString(v)
	}
	if v, ok := ext[types.ExtensionStatusHash]; ok {
		rec.StatusHash = fmt.Sprint(v)
	}
	return statusRequest{ResourceID: id, Consumer: cluster, Version: int64(version), Record: rec, Deleted: deleted}, nil
}

var deletedCondition = []byte(`"` + "Deleted" + `"`)

// statusDeleted checks that data is a JSON object and reports whether its
// conditions say Deleted=True. Only data that mentions "Deleted" is
// decoded; the rest is only checked for JSON syntax, which keeps the hot
// path of 150,000 statuses cheap.
func statusDeleted(data []byte) (bool, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return false, errors.New("failed to decode cloudevent data as resource status: data is not a JSON object")
	}
	if !bytes.Contains(data, deletedCondition) {
		if !json.Valid(data) {
			return false, errors.New("failed to decode cloudevent data as resource status: data is not valid JSON")
		}
		return false, nil
	}
	var st struct {
		Conditions []metav1.Condition `json:"conditions"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return false, fmt.Errorf("failed to decode cloudevent data as resource status: %v", err)
	}
	return meta.IsStatusConditionTrue(st.Conditions, "Deleted"), nil
}

// sequenceNewer is Maestro's compareSequenceIDs: whether snowflake id a is
// newer than b. Any id beats none; otherwise both must parse and come from
// the same node.
func sequenceNewer(a, b string) (bool, error) {
	if a != "" && b == "" {
		return true, nil
	}
	id1, err := snowflake.ParseString(a)
	if err != nil {
		return false, fmt.Errorf("Unable to compare sequence IDs: Unable to parse sequence ID: %v", err)
	}
	id2, err := snowflake.ParseString(b)
	if err != nil {
		return false, fmt.Errorf("Unable to compare sequence IDs: Unable to parse sequence ID: %v", err)
	}
	if id1.Node() != id2.Node() {
		return false, errors.New("Unable to compare sequence IDs: Sequence IDs are not from the same node")
	}
	if id1.Time() != id2.Time() {
		return id1.Time() > id2.Time(), nil
	}
	return id1.Step() > id2.Step(), nil
}

// forwardEvent builds the status event Maestro sends to the source: the
// agent's event with the spec's metadata and the data extended with
// manifestBundle, the stored spec.
func forwardEvent(r *resource, st *statusRecord, bundles *bundleCache) (*cloudevents.Event, error) {
	var data []byte
	if r.Spec != nil {
		bundle, err := bundles.get(r.Spec.data)
		if err != nil {
			return nil, err
		}
		data = withBundle(bundle.String(), st.data.String())
	} else {
		data = st.data.Bytes()
	}
	evt := &cloudevents.Event{Context: st.context.Clone(), DataEncoded: data}
	if r.Spec != nil && r.Spec.hasMeta {
		meta, err := r.metadataFor(true)
		if err != nil {
			return nil, err
		}
		if err := evt.Context.SetExtension(types.ExtensionWorkMeta, meta); err != nil {
			return nil, err
		}
	}
	return evt, nil
}

// withBundle splices {"manifestBundle":bundle, ...status} without decoding
// the status: ManifestBundleStatus marshals manifestBundle first, and the
// agent SDK writes the rest in struct order already, so the bytes equal
// Maestro's decode-and-marshal (checked against the golden vectors).
func withBundle(bundle, status string) []byte {
	out := make([]byte, 0, len(bundle)+len(status)+20)
	out = append(out, `{"manifestBundle":`...)
	out = append(out, bundle...)
	rest := strings.TrimSpace(status[1:])
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}
