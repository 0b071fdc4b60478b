package maestro

import (
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro/wire"
)

// keysFromDecoded is the reference for ExtractKeys: the same rules applied
// to a fully decoded event. ok is false when ExtractKeys must fail.
func keysFromDecoded(ce *pbv1.CloudEvent) (Keys, bool) { return wire.FromDecoded(ce) }
