package generate

import (
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
)

// StatusShape selects what the generated agents report.
type StatusShape uint8

const (
	// StatusRealistic is what an OCM work agent reports: the work-agent
	// condition strings and each object's real `.status` as JSONPath
	// feedback (PROTOCOL.md §8.2, §9.3).
	StatusRealistic StatusShape = 1
	// StatusScaleTest is the maestro-addon scale test's simulated agent:
	// fixed condition strings, observedGeneration 3 and one pretty-printed
	// Deployment status for every Deployment (PROTOCOL.md §13.2).
	StatusScaleTest StatusShape = 2
)

// String returns the flag value naming the shape.
func (s StatusShape) String() string {
	switch s {
	case StatusRealistic:
		return "realistic"
	case StatusScaleTest:
		return "scale-test"
	}
	return fmt.Sprintf("status-shape(%d)", uint8(s))
}

// ParseStatusShape parses "realistic" or "scale-test".
func ParseStatusShape(s string) (StatusShape, error) {
	switch s {
	case "realistic":
		return StatusRealistic, nil
	case "scale-test":
		return StatusScaleTest, nil
	}
	return 0, fmt.Errorf("generate: unknown status shape %q (want realistic or scale-test)", s)
}

// Phase says which of a work's status reports a status is. A real agent
// patches Applied first, then Available once the objects are up.
type Phase uint8

const (
	// PhaseApplied: only the Applied conditions, no feedback yet.
	PhaseApplied Phase = 1
	// PhaseAvailable: Applied and Available conditions and the feedback.
	PhaseAvailable Phase = 2
	// PhaseDeleted: the agent's last status, after it removed the
	// manifests of a deleted work: Available's, plus Deleted=True
	// (sdk-go work agent client deleteWork).
	PhaseDeleted Phase = 3
)

// StatusTimes are the instants a status shows. metav1.Time marshals to
// whole seconds, so only the seconds matter.
type StatusTimes struct {
	Applied   time.Time // the manifests were applied: Applied conditions
	Available time.Time // the work became available: Available conditions
	Ready     time.Time // the Deployments reached their replicas (their own .status)
}

// Condition strings of the agent's deletion acknowledgement (sdk-go
// clients/work/agent/client ManifestWorkAgentClient.deleteWork).
const (
	condDeleted          = "Deleted"
	reasonDeleted        = "ManifestsDeleted"
	messageDeletedPrefix = "The manifests are deleted from the cluster "
)

// deletedCondition is the condition the agent appends when it has deleted
// a work's manifests; Maestro then removes the bundle.
func deletedCondition(cluster string, at time.Time) metav1.Condition {
	return condition(condDeleted, reasonDeleted, messageDeletedPrefix+cluster, 0, at)
}

// Condition strings of the OCM work agent (ocm pkg/work/spoke).
const (
	condApplied              = "Applied"
	condAvailable            = "Available"
	condFeedbackSynced       = "StatusFeedbackSynced"
	reasonWorkApplied        = "AppliedManifestWorkComplete"
	messageWorkApplied       = "Apply manifest work complete"
	reasonWorkAvailable      = "ResourcesAvailable"
	messageWorkAvailable     = "All resources are available"
	reasonManifestApplied    = "AppliedManifestComplete"
	messageManifestApplied   = "Apply manifest complete"
	reasonManifestAvailable  = "ResourceAvailable"
	messageManifestAvailable = "Resource is available"
)

// The scale test simulator's constants (maestro-addon
// test/performance/pkg/spoke/application/main.go).
const (
	simObservedGeneration   = 3
	simReasonWorkAvailable  = "ResourceAvailable"
	simMessageResAvailable  = "Resources is available"
	simPhaseActive          = `{"phase":"Active"}`
	simDeploymentStatusJSON = "\n{\n\t\"availableReplicas\":3,\n\t\"conditions\":[\n\t\t{\n\t\t\t\"lastTransitionTime\":\"2024-09-29T01:47:46Z\",\n\t\t\t\"lastUpdateTime\":\"2024-09-29T01:47:46Z\",\n\t\t\t\"message\":\"Deployment has minimum availability.\",\n\t\t\t\"reason\":\"MinimumReplicasAvailable\",\n\t\t\t\"status\":\"True\",\"type\":\"Available\"\n\t\t},{\n\t\t\t\"lastTransitionTime\":\"2024-09-29T01:33:58Z\",\n\t\t\t\"lastUpdateTime\":\"2024-09-29T01:47:46Z\",\n\t\t\t\"message\":\"ReplicaSet \\\"frontend-76fb487c8f\\\" has successfully progressed.\",\n\t\t\t\"reason\":\"NewReplicaSetAvailable\",\n\t\t\t\"status\":\"True\",\n\t\t\t\"type\":\"Progressing\"\n\t\t}],\n\t\"observedGeneration\":4,\n\t\"readyReplicas\":3,\n\t\"replicas\":3,\n\t\"updatedReplicas\":3\n}"
)

// replicaSetHash is the pod-template-hash suffix the realistic Deployment
// status names its ReplicaSet by. It stays fixed because the templates do.
const replicaSetHash = "6c4b8f9d7f"

// Status builds the status a work agent reports for this workload.
// observedGeneration is the resource version the agent received (the
// simulator of StatusScaleTest ignores it and always says 3).
func (w *Workload) Status(shape StatusShape, phase Phase, t StatusTimes, observedGeneration int64) (workv1.ManifestWorkStatus, error) {
	switch shape {
	case StatusRealistic:
		return w.realisticStatus(phase, t, observedGeneration)
	case StatusScaleTest:
		if phase != PhaseAvailable {
			return workv1.ManifestWorkStatus{}, fmt.Errorf("generate: the scale-test status shape has only one report (Available), not phase %d", phase)
		}
		return w.scaleTestStatus(t.Available), nil
	}
	return workv1.ManifestWorkStatus{}, fmt.Errorf("generate: unknown status shape %d", shape)
}

func condition(typ, reason, message string, gen int64, at time.Time) metav1.Condition {
	return metav1.Condition{
		Type: typ, Status: metav1.ConditionTrue, ObservedGeneration: gen,
		LastTransitionTime: metav1.NewTime(at), Reason: reason, Message: message,
	}
}

func (o Object) resourceMeta(ordinal int) workv1.ManifestResourceMeta {
	return workv1.ManifestResourceMeta{
		Ordinal: int32(ordinal), Group: o.Group, Version: o.Version, Kind: o.Kind,
		Resource: o.Resource, Name: o.Name, Namespace: o.Namespace,
	}
}

func jsonRawFeedback(raw string) workv1.StatusFeedbackResult {
	return workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{
		Name:  "status",
		Value: workv1.FieldValue{Type: workv1.JsonRaw, JsonRaw: &raw},
	}}}
}

func (w *Workload) realisticStatus(phase Phase, t StatusTimes, gen int64) (workv1.ManifestWorkStatus, error) {
	st := workv1.ManifestWorkStatus{
		Conditions: []metav1.Condition{condition(condApplied, reasonWorkApplied, messageWorkApplied, gen, t.Applied)},
	}
	if phase == PhaseAvailable {
		st.Conditions = append(st.Conditions, condition(condAvailable, reasonWorkAvailable, messageWorkAvailable, gen, t.Available))
	}
	for i, o := range w.Objects {
		mc := workv1.ManifestCondition{
			ResourceMeta: o.resourceMeta(i),
			Conditions:   []metav1.Condition{condition(condApplied, reasonManifestApplied, messageManifestApplied, 0, t.Applied)},
		}
		if phase == PhaseAvailable {
			mc.Conditions = append(mc.Conditions, condition(condAvailable, reasonManifestAvailable, messageManifestAvailable, 0, t.Available))
			if o.Feedback {
				// A kind the model has no status for reports no value,
				// as the agent's JSONPath finds none on an object
				// without .status; the feedback is still synced.
				raw, known, err := objectStatusJSON(o, t)
				if err != nil {
					return workv1.ManifestWorkStatus{}, err
				}
				if known {
					mc.StatusFeedbacks = jsonRawFeedback(raw)
				}
				mc.Conditions = append(mc.Conditions, condition(condFeedbackSynced, condFeedbackSynced, "", 0, t.Available))
			}
		}
		st.ResourceStatus.Manifests = append(st.ResourceStatus.Manifests, mc)
	}
	return st, nil
}

// objectStatusJSON is the `.status` of a live object as the agent's
// JSONPath feedback returns it: the unstructured object's map, so the keys
// come sorted.
func objectStatusJSON(o Object, t StatusTimes) (string, bool, error) {
	var status any
	switch o.Kind {
	case "Namespace":
		status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	case "Service":
		status = corev1.ServiceStatus{}
	case "Deployment":
		status = appsv1.DeploymentStatus{
			ObservedGeneration: 1,
			Replicas:           o.Replicas,
			UpdatedReplicas:    o.Replicas,
			ReadyReplicas:      o.Replicas,
			AvailableReplicas:  o.Replicas,
			Conditions: []appsv1.DeploymentCondition{
				{
					Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
					LastUpdateTime: metav1.NewTime(t.Ready), LastTransitionTime: metav1.NewTime(t.Ready),
					Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
				},
				{
					Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
					LastUpdateTime: metav1.NewTime(t.Ready), LastTransitionTime: metav1.NewTime(t.Applied),
					Reason:  "NewReplicaSetAvailable",
					Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", o.Name+"-"+replicaSetHash),
				},
			},
		}
	default:
		return "", false, nil
	}
	typed, err := json.Marshal(status)
	if err != nil {
		return "", false, fmt.Errorf("generate: marshal %s status: %w", o.Kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(typed, &m); err != nil {
		return "", false, fmt.Errorf("generate: %s status to map: %w", o.Kind, err)
	}
	sorted, err := json.Marshal(m)
	if err != nil {
		return "", false, fmt.Errorf("generate: marshal %s status map: %w", o.Kind, err)
	}
	return string(sorted), true, nil
}

func (w *Workload) scaleTestStatus(at time.Time) workv1.ManifestWorkStatus {
	st := workv1.ManifestWorkStatus{
		Conditions: []metav1.Condition{
			condition(condApplied, reasonWorkApplied, messageWorkApplied, simObservedGeneration, at),
			condition(condAvailable, simReasonWorkAvailable, messageWorkAvailable, simObservedGeneration, at),
		},
	}
	for i, o := range w.Objects {
		raw := simPhaseActive
		if o.Kind == "Deployment" {
			raw = simDeploymentStatusJSON
		}
		st.ResourceStatus.Manifests = append(st.ResourceStatus.Manifests, workv1.ManifestCondition{
			ResourceMeta:    o.resourceMeta(i),
			StatusFeedbacks: jsonRawFeedback(raw),
			Conditions: []metav1.Condition{
				condition(condApplied, reasonWorkApplied, messageWorkApplied, 0, at),
				condition(condAvailable, simReasonWorkAvailable, simMessageResAvailable, 0, at),
				condition(condFeedbackSynced, condFeedbackSynced, "", 0, at),
			},
		})
	}
	return st
}
