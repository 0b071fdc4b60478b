package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/syncbuf"
	"github.com/cereplay/cereplay/maestro"
)

// The file onespec writes is a PublishRequest the SDK's protobuf types
// decode (as ghz will), carrying the trace's first spec create.
func TestOneSpecWritesPublishRequest(t *testing.T) {
	out := filepath.Join(t.TempDir(), "spec.bin")
	var w syncbuf.Buffer
	if err := run("../../traces/guestbook-100x50", out, 10, &w); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var req pbv1.PublishRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatalf("decode %d bytes as a PublishRequest: %v", len(b), err)
	}
	if got := req.GetEvent().GetType(); got != maestro.TypeSpecCreate {
		t.Fatalf("event type %q, want %q", got, maestro.TypeSpecCreate)
	}
	if !strings.Contains(w.String(), "first 10 specs") {
		t.Fatalf("output %q does not give the mean size of the first 10 specs", w.String())
	}
}

// A trace that is not there is an error naming it.
func TestOneSpecMissingTrace(t *testing.T) {
	err := run("no-such-trace", filepath.Join(t.TempDir(), "spec.bin"), 1, &syncbuf.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no-such-trace") {
		t.Fatalf("run on a missing trace: %v", err)
	}
}
