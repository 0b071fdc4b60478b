package maestro

import (
	"strconv"

	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// keysFromDecoded is the reference for ExtractKeys: the same rules applied
// to a fully decoded event. ok is false when ExtractKeys must fail.
func keysFromDecoded(ce *pbv1.CloudEvent) (k Keys, ok bool) {
	k = Keys{
		Type:           ce.GetType(),
		ID:             ce.GetId(),
		Source:         ce.GetSource(),
		ClusterName:    ce.GetAttributes()[AttrClusterName].GetCeString(),
		ResourceID:     ce.GetAttributes()[AttrResourceID].GetCeString(),
		OriginalSource: ce.GetAttributes()[AttrOriginalSource].GetCeString(),
		SequenceID:     ce.GetAttributes()[AttrSequenceID].GetCeString(),
	}
	_, k.Deleting = ce.GetAttributes()[AttrDeletionTimestamp]
	if rv, found := ce.GetAttributes()[AttrResourceVersion]; found {
		switch a := rv.GetAttr().(type) {
		case *pbv1.CloudEventAttributeValue_CeInteger:
			k.ResourceVersion = int64(a.CeInteger)
		case *pbv1.CloudEventAttributeValue_CeString:
			v, err := strconv.ParseInt(a.CeString, 10, 64)
			if err != nil {
				return Keys{}, false
			}
			k.ResourceVersion = v
		default:
			return Keys{}, false
		}
		k.HasResourceVersion = true
	}
	return k, true
}
