package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/internal/fixtures"
	"github.com/cereplay/cereplay/maestro"
)

// golden reads a golden message of PROTOCOL.md from the repository's
// testdata.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures.Examples(t), name+".pb.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Patching the wire bytes gives exactly the event that decoding, setting
// with the maestro setters and re-encoding gives.
func TestRewriteMatchesDecodeSetEncode(t *testing.T) {
	t.Parallel()
	const rid = "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"
	for _, tc := range []struct {
		golden  string
		runID   string
		version int64
		hasVer  bool
		seq     string
	}{
		{"03ra-agent-status-update_request-realistic-applied", "", 7, true, "2126483703738667999"},
		{"03rb-agent-status-update_request-realistic-available", "run-2", 1 << 40, true, "1"},
		{"01-source-spec-create_request", "run-2", 0, false, ""},
		{"01-source-spec-create_request", "", 0, false, ""},
	} {
		t.Run(tc.golden+"/"+tc.runID, func(t *testing.T) {
			in, err := maestro.PublishRequestEvent(golden(t, tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			m := newRemapper(tc.runID)
			got, err := m.event(nil, in, rid, m.id(rid), tc.version, tc.hasVer, tc.seq)
			if err != nil {
				t.Fatal(err)
			}
			want, err := maestro.Unmarshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if tc.hasVer {
				maestro.SetResourceVersion(want, tc.version)
			}
			if tc.seq != "" {
				maestro.SetSequenceID(want, tc.seq)
			}
			if m != nil {
				newRID := m.id(rid)
				maestro.SetStringAttr(want, maestro.AttrResourceID, newRID)
				md := maestro.StringAttr(want, maestro.AttrMetadata)
				maestro.SetStringAttr(want, maestro.AttrMetadata, strings.ReplaceAll(md, rid, newRID))
				if newRID == rid || !strings.Contains(md, rid) {
					t.Fatalf("remap did nothing: %s -> %s in %s", rid, newRID, md)
				}
			}
			gotEv, err := maestro.Unmarshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(gotEv, want) {
				t.Fatalf("patched event differs:\n got %v\nwant %v", gotEv.Attributes, want.Attributes)
			}
			k, err := maestro.ExtractKeys(got)
			if err != nil || tc.seq != "" && k.SequenceID != tc.seq {
				t.Fatalf("keys %+v, %v", k, err)
			}
		})
	}
}

// The remap is deterministic and depends on the run id.
func TestRemapper(t *testing.T) {
	t.Parallel()
	if newRemapper("") != nil || (*remapper)(nil).id("x") != "x" {
		t.Fatal("no run id must mean no remap")
	}
	a, b := newRemapper("a"), newRemapper("b")
	if a.id("r") != newRemapper("a").id("r") || a.id("r") == b.id("r") || a.id("r") == "r" {
		t.Fatal("remap not deterministic per run id")
	}
	if len(a.rewrites()) != 5 || len((*remapper)(nil).rewrites()) != 3 {
		t.Fatal("rewrites list")
	}
}

func TestPatchRejectsGarbage(t *testing.T) {
	t.Parallel()
	m := newRemapper("x")
	for _, b := range [][]byte{{0x2a, 0xff}, {0xff}, {0x2a, 0x02, 0x0a, 0x7f}} {
		if _, err := m.event(nil, b, "r", m.id("r"), 1, true, "1"); err == nil {
			t.Errorf("%x: accepted", b)
		}
	}
}

// A status goes under its spec's mapped resource id, taken from the spec
// rather than hashed again, and under its own when it names another
// resource or answers no spec.
func TestStatusWireRID(t *testing.T) {
	r := &runner{remap: newRemapper("run-2")}
	spec := &specState{meta: recMeta{rid: "rid-1"}, wireRID: r.remap.id("rid-1")}
	for _, tc := range []struct {
		st   *statusState
		want string
	}{
		{&statusState{meta: recMeta{rid: "rid-1"}, spec: spec}, spec.wireRID},
		{&statusState{meta: recMeta{rid: "rid-2"}, spec: spec}, r.remap.id("rid-2")},
		{&statusState{meta: recMeta{rid: "rid-3"}}, r.remap.id("rid-3")},
	} {
		if got := r.statusWireRID(tc.st); got != tc.want {
			t.Errorf("status of %s: %s, want %s", tc.st.meta.rid, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(20, func() {
		_ = r.statusWireRID(&statusState{meta: recMeta{rid: "rid-1"}, spec: spec})
	}); n != 0 {
		t.Errorf("a status of its spec's resource: %v allocations, want 0 (no hash)", n)
	}
}
