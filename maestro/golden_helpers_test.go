package maestro

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// examplesDir is testdata/protocol/examples at the repository root.
func examplesDir(tb testing.TB) string { return fixtures.Examples(tb) }

// golden is one example message of the protocol.
type golden struct {
	name string
	// publish reports that the .pb.bin is a PublishRequest (client to
	// server); otherwise it is a stream CloudEvent.
	publish bool
	// event is the CloudEvent wire bytes (unwrapped from PublishRequest).
	event []byte
	// decoded is the event as decoded from the .pb.bin.
	decoded *pbv1.CloudEvent
}

// loadGolden reads the CloudEvent of example name (e.g. "01-source-spec-create_request").
func loadGolden(tb testing.TB, name string) golden {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(examplesDir(tb), name+".pb.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	g := golden{name: name, publish: isClientMessage(name), event: raw}
	if g.publish {
		if g.event, err = PublishRequestEvent(raw); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		req := &pbv1.PublishRequest{}
		if err := proto.Unmarshal(raw, req); err != nil {
			tb.Fatalf("%s: decode PublishRequest: %v", name, err)
		}
		g.decoded = req.Event
	} else {
		if g.decoded, err = Unmarshal(raw); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
	}
	// The .pb.json is the same message in protojson; the two must agree.
	js, err := os.ReadFile(filepath.Join(examplesDir(tb), name+".pb.json"))
	if err != nil {
		tb.Fatal(err)
	}
	fromJSON := &pbv1.CloudEvent{}
	if err := protojson.Unmarshal(js, fromJSON); err != nil {
		tb.Fatalf("%s.pb.json: %v", name, err)
	}
	if !proto.Equal(fromJSON, g.decoded) {
		tb.Fatalf("%s: .pb.bin and .pb.json differ", name)
	}
	return g
}

// isClientMessage reports whether example name was sent by a client
// (source or agent) and is therefore stored as a PublishRequest.
func isClientMessage(name string) bool {
	for _, p := range []string{"01-", "03", "05", "07-", "08-", "09-", "11-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// goldenEventNames lists every CloudEvent example (not subscriptions).
func goldenEventNames(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir(tb), "*.pb.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pb.bin")
		if strings.Contains(name, "subscription-request") {
			continue
		}
		names = append(names, name)
	}
	if len(names) < 16 {
		tb.Fatalf("found %d golden events in %s, want at least 16", len(names), examplesDir(tb))
	}
	return names
}
