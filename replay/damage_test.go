package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cereplay/cereplay/format"
)

// damageLastSegment writes a multi-segment trace into a new folder, damages
// its last segment with damage and returns the folder and that segment.
func damageLastSegment(t *testing.T, damage func(b []byte) []byte) (string, string) {
	t.Helper()
	trace := t.TempDir()
	testTrace{Clusters: 3, Works: 4, SegmentSize: 16 << 10}.write(t, trace)
	man, err := format.ReadManifest(trace)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Segments) < 3 {
		t.Fatalf("want a trace of several segments, got %d", len(man.Segments))
	}
	last := filepath.Join(trace, man.Segments[len(man.Segments)-1].Name)
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(last, damage(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return trace, last
}

func flipMiddleByte(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }

func cutInHalf(b []byte) []byte { return b[:len(b)/2] }

// A trace damaged in its last segment, played without --verify-first,
// sends what comes before the damage and then fails: the summary names
// the file, the offset and the record, and counts the trace's records
// next to the records played.
func TestReplayDamagedTraceFails(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		kind   error
	}{
		{"flipped byte", flipMiddleByte, format.ErrChecksum},
		{"cut in half", cutInHalf, format.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trace, last := damageLastSegment(t, tc.damage)
			out := filepath.Join(t.TempDir(), "run")
			cfg := baseConfig(s, trace, out)
			cfg.Max, cfg.CreateConsumers, cfg.RunID = true, true, strings.ReplaceAll(tc.name, " ", "-")
			cfg.VerifyFirst = VerifyOff
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			sum := res.Summary
			if res.OK() {
				t.Fatalf("a damaged trace replayed OK: %+v", sum)
			}
			d := sum.TraceDamage
			if d == nil || d.File != last || d.Record == 0 || d.Record >= uint64(sum.TraceRecords) {
				t.Fatalf("trace damage %+v, want in %s at a record inside the trace", d, last)
			}
			if sum.TraceRecords != 3+1+3*4*4 || sum.Records >= sum.TraceRecords || sum.SpecsSent == 0 {
				t.Errorf("records %d of %d, specs sent %d: want some played, not all", sum.Records, sum.TraceRecords, sum.SpecsSent)
			}
			problems := strings.Join(sum.Problems, "\n")
			if !strings.Contains(problems, "trace damaged at record") || !strings.Contains(problems, last) ||
				!strings.Contains(problems, "offset") || !strings.Contains(problems, tc.kind.Error()) {
				t.Errorf("problems do not name the damage: %q", problems)
			}
			back, err := ReadSummary(out)
			if err != nil || back.OK || back.TraceDamage == nil || back.TraceRecords != sum.TraceRecords {
				t.Fatalf("summary.json: %+v, %v", back, err)
			}
			var text bytes.Buffer
			_ = sum.WriteText(&text)
			want := "replay FAILED: max, " + strconv.FormatInt(sum.Records, 10) + " of " + strconv.FormatInt(sum.TraceRecords, 10) + " records"
			if !strings.Contains(text.String(), want) {
				t.Errorf("text summary wants %q:\n%s", want, text.String())
			}
		})
	}
}

// With --verify-first (the default for a trace this small) a damaged trace
// is refused before anything is sent or any results folder made.
func TestReplayVerifyFirstRefusesDamage(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	for _, mode := range []VerifyMode{VerifyAuto, VerifyOn} {
		trace, last := damageLastSegment(t, flipMiddleByte)
		out := filepath.Join(t.TempDir(), "run")
		cfg := baseConfig(s, trace, out)
		cfg.Max, cfg.VerifyFirst = true, mode
		res, err := Run(context.Background(), cfg)
		var ce *format.CorruptionError
		if res != nil || !errors.As(err, &ce) || ce.File != last || !strings.Contains(err.Error(), "nothing was sent") {
			t.Fatalf("mode %d: result %v, error %v; want a corruption error naming %s", mode, res, err, last)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mode %d: a refused trace left a results folder: %v", mode, err)
		}
	}
}
