package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// specBlocks returns the fenced code blocks of FORMAT.md that follow the
// line containing after.
func specBlock(t *testing.T, after string) string {
	t.Helper()
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i := strings.Index(s, after)
	if i < 0 {
		t.Fatalf("FORMAT.md has no %q", after)
	}
	s = s[i:]
	start := strings.Index(s, "```\n")
	end := strings.Index(s[start+4:], "```")
	return s[start+4 : start+4+end]
}

var hexByte = regexp.MustCompile(`^[0-9a-f]{2}$`)

// hexTokens reads the leading two-digit hex tokens of each line, after an
// optional 8-digit offset column; annotations after them are ignored.
func hexTokens(block string, offsetColumn bool) []byte {
	var out []byte
	for _, line := range strings.Split(block, "\n") {
		fields := strings.Fields(line)
		if offsetColumn && len(fields) > 0 {
			fields = fields[1:]
		}
		for _, f := range fields {
			if !hexByte.MatchString(f) {
				break
			}
			b, _ := hex.DecodeString(f)
			out = append(out, b...)
		}
	}
	return out
}

// TestSpecExamples: the worked examples in FORMAT.md are what the encoder
// produces, and decode back to the records they describe.
func TestSpecExamples(t *testing.T) {
	event := Record{Type: TypeEvent, Offset: 1500 * time.Millisecond, Flow: FlowAgentToServer, Actor: "c1", ResourceID: "r9",
		EventType: "t.x", HasTrigger: true, Trigger: 3, Delay: 120 * time.Millisecond, Data: []byte{0x0a, 0x01, 0x41}}
	want := hexTokens(specBlock(t, "A segment stream holding one event record"), true)
	got := AppendRecord(appendSegmentHeader(nil), &event)
	if !bytes.Equal(got, want) {
		t.Errorf("event example:\n got % x\nwant % x", got, want)
	}
	recs, err := decodeSegment("spec", want)
	if err != nil || len(recs) != 1 || !equalRecords(&recs[0], &event) {
		t.Errorf("event example decodes to %+v, %v", recs, err)
	}

	outcome := Record{Type: TypeOutcome, Offset: 2 * time.Second, Flow: FlowSourceToServer, Outcome: Outcome{Index: 7,
		Status: OutcomeFailed, Code: 14, Lateness: -2 * time.Millisecond, Latency: 3 * time.Millisecond, Note: "unavailable"}}
	want = hexTokens(specBlock(t, "An outcome record frame"), false)
	got = AppendRecord(nil, &outcome)
	if !bytes.Equal(got, want) {
		t.Errorf("outcome example:\n got % x\nwant % x", got, want)
	}
}

// TestSpecDigest computes a manifest digest by FORMAT.md §3.1 alone, with
// plain byte operations, and compares it with the Writer's.
func TestSpecDigest(t *testing.T) {
	b, err := os.ReadFile(goldenDir + "/" + ManifestName)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("{\n  \"digest\": \"sha256:")
	if len(prefix) != 22 || !bytes.HasPrefix(b, prefix) {
		t.Fatalf("manifest does not start with the 22-byte prefix of the spec")
	}
	stored := string(b[22:86])
	zeroed := bytes.Clone(b)
	copy(zeroed[22:86], bytes.Repeat([]byte("0"), 64))
	sum := sha256.Sum256(zeroed)
	if hex.EncodeToString(sum[:]) != stored {
		t.Errorf("spec digest %x, stored %s", sum, stored)
	}
	m, err := ReadManifest(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != "sha256:"+stored {
		t.Errorf("Manifest.Digest %s, file %s", m.Digest, stored)
	}
}
