package sim

import (
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"

	"github.com/cereplay/cereplay/maestro"
)

// spec is the stored form of a source's spec event, prepared once so that
// every delivery to an agent is cheap: the event context as the source sent
// it, the data re-encoded with sorted keys (Maestro stores the event as a
// JSON map and re-marshals it) and the work metadata with its name set to
// the resource id.
type spec struct {
	// context is the source's event context; it is cloned, never changed.
	context event.EventContext
	// data is the ManifestBundle with object keys sorted.
	data blob
	// hasMeta says the event had a metadata extension; metaJSON is that
	// work metadata with name := resource id, as sorted JSON: what a resync
	// response carries.
	hasMeta  bool
	metaJSON string
	// metaCreated is metaJSON plus creationTimestamp, what creates and
	// updates carry (Maestro's ResourceService.Get adds it).
	metaCreated string
}

// sameAs reports whether two specs carry the same event: Maestro treats an
// update whose stored JSON (including id and time) is unchanged as a no-op.
func (sp *spec) sameAs(o *spec) bool {
	if sp == nil || o == nil {
		return sp == o
	}
	return sp.context.GetID() == o.context.GetID() &&
		sp.context.GetTime().Equal(o.context.GetTime()) &&
		sp.metaJSON == o.metaJSON &&
		sp.data == o.data
}

// errInvalidManifest marks a spec whose manifests Maestro's validation
// rejects.
var errInvalidManifest = errors.New("the manifest in the resource is invalid")

// specRequest is a decoded spec Publish from a source (Maestro's
// decodeResourceSpec).
type specRequest struct {
	ResourceID string
	Consumer   string
	Source     string
	Version    int64
}

// decodeSpecRequest reads the extensions Maestro requires of every spec
// event, with Maestro's error messages.
func decodeSpecRequest(evt *cloudevents.Event) (specRequest, error) {
	ext := evt.Extensions()
	cluster, err := cetypes.ToString(ext[types.ExtensionClusterName])
	if err != nil {
		return specRequest{}, fmt.Errorf("failed to get clustername extension: %v", err)
	}
	id, err := cetypes.ToString(ext[types.ExtensionResourceID])
	if err != nil {
		return specRequest{}, fmt.Errorf("failed to get resourceid extension: %v", err)
	}
	version, err := cetypes.ToInteger(ext[types.ExtensionResourceVersion])
	if err != nil {
		return specRequest{}, fmt.Errorf("failed to get resourceversion extension: %v", err)
	}
	if v, ok := ext[types.ExtensionDeletionTimestamp]; ok {
		if _, err := cetypes.ToTime(v); err != nil {
			return specRequest{}, fmt.Errorf("failed to convert deletion timestamp %v to time.Time: %v", v, err)
		}
	}
	return specRequest{ResourceID: id, Consumer: cluster, Source: evt.Source(), Version: int64(version)}, nil
}

// newSpec prepares a source's create or update event for storage. created
// is the creation time of the resource, which Maestro adds to the metadata
// of every spec event it sends.
func newSpec(evt *cloudevents.Event, resourceID string, created time.Time, canon *canonCache) (*spec, error) {
	sp := &spec{context: evt.Context.Clone()}
	if raw := evt.Data(); len(raw) > 0 {
		sorted, err := canon.get(raw)
		if err != nil {
			return nil, err
		}
		sp.data = sorted
	}
	if v, ok := evt.Extensions()[types.ExtensionWorkMeta]; ok {
		s, err := cetypes.ToString(v)
		if err != nil {
			return nil, fmt.Errorf("failed to convert cloudevent to resource payload: metadata: %v", err)
		}
		_, doc, err := canonicalJSON([]byte(s))
		if err == nil && doc.vals[doc.root].kind != '{' {
			err = errors.New("not a JSON object")
		}
		if err != nil {
			return nil, fmt.Errorf("failed to convert cloudevent to resource payload: failed to unmarshal metadata extension to object: %v", err)
		}
		// Maestro names the work after the resource id on the agent.
		name := member{"name", appendString(nil, resourceID)}
		meta, err := doc.objectWith(name)
		if err != nil {
			return nil, err
		}
		withCreated, err := doc.objectWith(name, timeMember("creationTimestamp", created))
		if err != nil {
			return nil, err
		}
		sp.hasMeta, sp.metaJSON, sp.metaCreated = true, string(meta), string(withCreated)
		// Every delivery sets metadata anew; do not keep the source's copy.
		_ = sp.context.SetExtension(types.ExtensionWorkMeta, nil)
	}
	return sp, nil
}

// timeMember is a metadata timestamp as Maestro writes it (RFC 3339,
// seconds, UTC).
func timeMember(key string, t time.Time) member {
	return member{key, appendString(nil, t.UTC().Format(time.RFC3339))}
}

// validateBundle applies the checks of Maestro's ValidateManifestBundle that
// a replayed workload can trip: a JSON object whose manifests are objects
// with apiVersion, kind and metadata.name, none listed twice.
func validateBundle(d *jdoc) error {
	if d.vals[d.root].kind != '{' {
		return errors.New("failed to decode manifest bundle: data is not a JSON object")
	}
	list := d.member(d.root, "manifests")
	if list < 0 || d.vals[list].kind == 'l' {
		return nil
	}
	if d.vals[list].kind != '[' {
		return errors.New("failed to decode manifest bundle: manifests is not a list")
	}
	items := d.items(list)
	seen := make(map[string]bool, len(items))
	for i, m := range items {
		if d.vals[m].kind != '{' {
			return fmt.Errorf("manifest at index %d is not an object", i)
		}
		apiVersion := d.str(d.memberOr(m, "apiVersion"))
		kind := d.str(d.memberOr(m, "kind"))
		md := d.memberOr(m, "metadata")
		name := d.str(d.memberOr(md, "name"))
		ns := d.str(d.memberOr(md, "namespace"))
		switch {
		case apiVersion == "":
			return fmt.Errorf("manifest at index %d: apiVersion is required", i)
		case kind == "":
			return fmt.Errorf("manifest at index %d: kind is required", i)
		case name == "":
			return fmt.Errorf("manifest at index %d: metadata.name is required", i)
		case d.memberOr(md, "generateName") >= 0:
			return fmt.Errorf("manifest at index %d: metadata.generateName is not allowed", i)
		}
		key := apiVersion + "/" + kind + "/" + ns + "/" + name
		if seen[key] {
			return fmt.Errorf("duplicate manifest for resource %s/%s with resource type %s, Kind=%s", ns, name, apiVersion, kind)
		}
		seen[key] = true
	}
	return nil
}

// metadataFor is the metadata extension a spec event to an agent carries:
// with creation (and deletion) timestamps for create, update and delete,
// without for resync responses (Maestro lists those without the
// timestamp sync).
func (r *resource) metadataFor(withTimes bool) (string, error) {
	sp := r.Spec
	switch {
	case !sp.hasMeta:
		return "", nil
	case !withTimes:
		return sp.metaJSON, nil
	case r.deleting():
		_, doc, err := canonicalJSON([]byte(sp.metaJSON))
		if err != nil {
			return "", fmt.Errorf("decode stored metadata: %w", err)
		}
		b, err := doc.objectWith(timeMember("creationTimestamp", r.CreatedAt), timeMember("deletionTimestamp", r.DeletedAt))
		return string(b), err
	default:
		return sp.metaCreated, nil
	}
}

// agentEvent builds the spec event Maestro sends an agent for r, as its
// codec does: the stored event with source "maestro", the given type, the
// current resource version, the resource id and consumer, and for a
// resource being deleted a fresh id and time plus deletiontimestamp.
func (r *resource) agentEvent(eventType string, withTimes bool) (*cloudevents.Event, error) {
	evt := &cloudevents.Event{Context: r.Spec.context.Clone(), DataEncoded: r.Spec.data.view()}
	evt.SetSource(maestro.BrokerSource)
	evt.SetType(eventType)
	if err := evt.Context.SetExtension(types.ExtensionResourceID, r.ID); err != nil {
		return nil, err
	}
	if err := evt.Context.SetExtension(types.ExtensionResourceVersion, r.Version); err != nil {
		return nil, err
	}
	if err := evt.Context.SetExtension(types.ExtensionClusterName, r.Consumer); err != nil {
		return nil, err
	}
	if r.Spec.hasMeta {
		meta, err := r.metadataFor(withTimes)
		if err != nil {
			return nil, err
		}
		if err := evt.Context.SetExtension(types.ExtensionWorkMeta, meta); err != nil {
			return nil, err
		}
	}
	if r.deleting() {
		evt.SetID(uuid.NewString())
		evt.SetTime(time.Now())
		if err := evt.Context.SetExtension(types.ExtensionDeletionTimestamp, r.DeletedAt); err != nil {
			return nil, err
		}
	}
	return evt, nil
}
