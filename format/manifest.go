package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Provenance says how a trace was made: by a generator (Params, Seed) or
// a recorder (Upstreams). It is part of the digest, so a tool that wants
// identical traces from identical inputs must not put timestamps here.
type Provenance struct {
	Tool      string            `json:"tool"`
	Version   string            `json:"version,omitempty"`
	Command   string            `json:"command,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	Seed      int64             `json:"seed,omitempty"`
	Upstreams []string          `json:"upstreams,omitempty"`
}

// clone copies p so that later changes to the caller's map or slice do not
// reach a Writer's manifest.
func (p Provenance) clone() Provenance {
	p.Params = maps.Clone(p.Params)
	p.Upstreams = slices.Clone(p.Upstreams)
	return p
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Name            string        `json:"name"`
	Records         int64         `json:"records"`
	FirstOffset     time.Duration `json:"first_offset_ns"`
	LastOffset      time.Duration `json:"last_offset_ns"`
	RawBytes        int64         `json:"raw_bytes"`        // decompressed stream, header included
	CompressedBytes int64         `json:"compressed_bytes"` // the file
	SHA256          string        `json:"sha256"`           // hex SHA-256 of the file
}

// Manifest is manifest.json: what a trace holds and how to check it.
// Durations are integer nanoseconds in JSON.
type Manifest struct {
	// Digest is "sha256:<hex>", the trace's identity (see FORMAT.md).
	Digest        string     `json:"digest"`
	FormatVersion int        `json:"format_version"`
	Provenance    Provenance `json:"provenance"`
	// Consumers are the actors of agent flows, Sources the actors of
	// source flows; sorted, unique, from event records.
	Consumers []string `json:"consumers"`
	Sources   []string `json:"sources"`
	// Records counts every record; Outcomes those of TypeOutcome.
	Records  int64 `json:"records"`
	Outcomes int64 `json:"outcomes"`
	// CountsByFlow and CountsByType count event records by flow name and
	// by non-empty CloudEvent type.
	CountsByFlow    map[string]int64 `json:"counts_by_flow"`
	CountsByType    map[string]int64 `json:"counts_by_type"`
	FirstOffset     time.Duration    `json:"first_offset_ns"`
	LastOffset      time.Duration    `json:"last_offset_ns"`
	RawBytes        int64            `json:"raw_bytes"`
	CompressedBytes int64            `json:"compressed_bytes"`
	// SegmentSize and Level are the Writer settings the bytes depend on.
	SegmentSize int64         `json:"segment_size"`
	Level       int           `json:"zstd_level"`
	Segments    []SegmentInfo `json:"segments"`
}

// digestPrefix is how every manifest.json starts; the 64 hex digits of the
// digest follow it. See FORMAT.md "Digest".
const digestPrefix = "{\n  \"digest\": \"sha256:"

// encodeManifest returns the bytes of manifest.json with m.Digest set to
// the digest of those bytes.
func encodeManifest(m *Manifest) ([]byte, error) {
	m.Digest = "sha256:" + strings.Repeat("0", 64)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("format: encode manifest: %w", err)
	}
	b := buf.Bytes()
	if len(b) > MaxManifestSize {
		// Readers would refuse it: fail here, naming what made it large.
		return nil, fmt.Errorf("format: the manifest would be %d bytes, more than the %d MiB readers accept (%d consumers, %d segments: use fewer consumers or larger segments)",
			len(b), MaxManifestSize>>20, len(m.Consumers), len(m.Segments))
	}
	if !bytes.HasPrefix(b, []byte(digestPrefix)) {
		return nil, fmt.Errorf("format: manifest encoding does not start with the digest")
	}
	sum := sha256.Sum256(b)
	copy(b[len(digestPrefix):], hex.EncodeToString(sum[:]))
	m.Digest = "sha256:" + hex.EncodeToString(sum[:])
	return b, nil
}

// manifestDigest checks the framing of manifest bytes and returns the
// digest they carry and the one they hash to.
func manifestDigest(b []byte) (stored, computed string, err error) {
	n := len(digestPrefix)
	if !bytes.HasPrefix(b, []byte(digestPrefix)) || len(b) < n+64 {
		return "", "", fmt.Errorf("%w: does not start with %q and a 64-digit digest", ErrManifest, digestPrefix+"...")
	}
	hexDigits := b[n : n+64]
	if _, err := hex.DecodeString(string(hexDigits)); err != nil || bytes.ContainsAny(hexDigits, "ABCDEF") {
		return "", "", fmt.Errorf("%w: digest is not 64 lowercase hex digits", ErrManifest)
	}
	zeroed := bytes.Clone(b)
	copy(zeroed[n:], strings.Repeat("0", 64))
	sum := sha256.Sum256(zeroed)
	return "sha256:" + string(hexDigits), "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ReadManifest reads and checks dir/manifest.json: digest, version and the
// internal consistency of its numbers. It does not read segments.
func ReadManifest(dir string) (*Manifest, error) {
	m, _, err := readManifestDir(dir)
	return m, err
}

// readManifestDir is ReadManifest that also returns the file's bytes.
func readManifestDir(dir string) (*Manifest, []byte, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("format: open trace: %w", err)
	}
	path := filepath.Join(dir, ManifestName)
	b, err := readManifestFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			hint := "not a trace"
			if segs, _ := filepath.Glob(filepath.Join(dir, "*"+SegmentExt)); len(segs) > 0 {
				hint = fmt.Sprintf("%d segment files but no manifest: the trace was never finished", len(segs))
			}
			return nil, nil, fileErr(path, 0, fmt.Errorf("%w: no %s (%s)", ErrManifest, ManifestName, hint))
		}
		return nil, nil, err
	}
	m, err := parseManifest(path, b)
	return m, b, err
}

// readManifestFile reads path, refusing a file over MaxManifestSize before
// reading it (and, should its size not be known beforehand, after reading
// one byte more than the limit).
func readManifestFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("format: read manifest: %w", err)
	}
	defer f.Close()
	tooBig := func(size int64) error {
		return fileErr(path, MaxManifestSize, fmt.Errorf("%w: %d bytes, more than the %d (%d MiB) a manifest may have",
			ErrManifest, size, MaxManifestSize, MaxManifestSize>>20))
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxManifestSize {
		return nil, tooBig(fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("format: read manifest: %w", err)
	}
	if len(b) > MaxManifestSize {
		return nil, tooBig(int64(len(b)))
	}
	return b, nil
}

func parseManifest(path string, b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fileErr(path, se.Offset, fmt.Errorf("%w: invalid JSON: %v", ErrManifest, err))
		case errors.As(err, &te):
			return nil, fileErr(path, te.Offset, fmt.Errorf("%w: %v", ErrManifest, err))
		}
		return nil, fileErr(path, dec.InputOffset(), fmt.Errorf("%w: %v", ErrManifest, err))
	}
	if rest := dec.InputOffset(); len(bytes.TrimSpace(b[rest:])) > 0 {
		return nil, fileErr(path, rest, fmt.Errorf("%w: data after the JSON object", ErrManifest))
	}
	// Version first: a newer trace must say "version", not "bad digest".
	if m.FormatVersion != FormatVersion {
		return nil, fileErr(path, 0, fmt.Errorf("%w: format_version %d, this reader knows %d", ErrVersion, m.FormatVersion, FormatVersion))
	}
	stored, computed, err := manifestDigest(b)
	if err != nil {
		return nil, fileErr(path, 0, err)
	}
	if stored != computed {
		return nil, fileErr(path, int64(len(digestPrefix)), fmt.Errorf("%w: manifest digest %s, content hashes to %s", ErrChecksum, stored, computed))
	}
	if err := m.check(); err != nil {
		return nil, fileErr(path, 0, err)
	}
	return &m, nil
}

// check validates the manifest's own arithmetic: segment names, sums and
// offsets, so a reader can trust them as bounds.
func (m *Manifest) check() error {
	var recs, raw, comp int64
	var last time.Duration
	for i, s := range m.Segments {
		if want := SegmentName(i + 1); s.Name != want {
			return fmt.Errorf("%w: segment %d is named %q, want %q", ErrManifest, i+1, s.Name, want)
		}
		if s.Records <= 0 || s.RawBytes < int64(segmentHeaderSize) || s.RawBytes > MaxSegmentSize || s.CompressedBytes <= 0 {
			return fmt.Errorf("%w: segment %s has impossible sizes (records %d, raw %d, compressed %d)", ErrManifest, s.Name, s.Records, s.RawBytes, s.CompressedBytes)
		}
		if s.FirstOffset < last || s.LastOffset < s.FirstOffset {
			return fmt.Errorf("%w: %w: segment %s spans %d..%d ns after %d ns", ErrManifest, ErrOrder, s.Name, s.FirstOffset, s.LastOffset, last)
		}
		if len(s.SHA256) != 64 {
			return fmt.Errorf("%w: segment %s sha256 %q is not 64 hex digits", ErrManifest, s.Name, s.SHA256)
		}
		last = s.LastOffset
		recs += s.Records
		raw += s.RawBytes
		comp += s.CompressedBytes
	}
	if recs != m.Records || raw != m.RawBytes || comp != m.CompressedBytes {
		return fmt.Errorf("%w: totals (records %d, raw %d, compressed %d) differ from the segments' sums (%d, %d, %d)",
			ErrManifest, m.Records, m.RawBytes, m.CompressedBytes, recs, raw, comp)
	}
	if n := len(m.Segments); n > 0 && (m.FirstOffset != m.Segments[0].FirstOffset || m.LastOffset != m.Segments[n-1].LastOffset) {
		return fmt.Errorf("%w: time span %d..%d differs from the segments' %d..%d", ErrManifest,
			m.FirstOffset, m.LastOffset, m.Segments[0].FirstOffset, m.Segments[n-1].LastOffset)
	}
	return nil
}
