package format

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestZstdCLI: a segment is a standard zstd stream. The zstd command
// decodes it to exactly the segment header followed by the framed
// records the Reader returns.
func TestZstdCLI(t *testing.T) {
	zstdBin, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd command not installed (apt-get install zstd)")
	}
	dir := seedTrace(t)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for _, seg := range segs {
		out, err := exec.Command(zstdBin, "-dc", seg).Output()
		if err != nil {
			t.Fatalf("zstd -dc %s: %v", seg, err)
		}
		r, err := OpenSegment(seg)
		if err != nil {
			t.Fatal(err)
		}
		want := appendSegmentHeader(nil)
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			want = AppendRecord(want, rec)
		}
		r.Close()
		if !bytes.Equal(out, want) {
			t.Errorf("%s: zstd -dc gives %d bytes, the framed records are %d bytes", filepath.Base(seg), len(out), len(want))
		}
	}
}
