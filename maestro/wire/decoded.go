package wire

import (
	"strconv"

	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"
)

// FromDecoded applies Extract's rules to a fully decoded event: the
// reference Extract is tested against, for callers that hold a decoded
// event already. ok is false where Extract returns an error.
func FromDecoded(ce *pbv1.CloudEvent) (k Keys, ok bool) {
	attrs := ce.GetAttributes()
	k = Keys{
		Type:           ce.GetType(),
		ID:             ce.GetId(),
		Source:         ce.GetSource(),
		ClusterName:    attrs[AttrClusterName].GetCeString(),
		ResourceID:     attrs[AttrResourceID].GetCeString(),
		OriginalSource: attrs[AttrOriginalSource].GetCeString(),
		SequenceID:     attrs[AttrSequenceID].GetCeString(),
	}
	_, k.Deleting = attrs[AttrDeletionTimestamp]
	if rv, found := attrs[AttrResourceVersion]; found {
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
