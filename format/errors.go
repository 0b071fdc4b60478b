package format

import (
	"errors"
	"fmt"
)

// Sentinel errors. Damage found in a file comes wrapped in a
// *CorruptionError that says where; match the kind with errors.Is and the
// place with errors.As.
var (
	// ErrChecksum: bytes differ from what a checksum recorded (segment
	// SHA-256, record CRC32C, manifest digest, zstd content checksum).
	ErrChecksum = errors.New("format: checksum mismatch")
	// ErrTruncated: a file or a record ends before its declared end.
	ErrTruncated = errors.New("format: truncated")
	// ErrVersion: a manifest or segment of a format version this reader
	// does not know.
	ErrVersion = errors.New("format: unsupported format version")
	// ErrOrder: a record's offset is smaller than the one before it.
	ErrOrder = errors.New("format: record offsets out of order")
	// ErrMissingSegment: a segment named in the manifest is not there.
	ErrMissingSegment = errors.New("format: missing segment")
	// ErrManifest: manifest.json is missing, unreadable or inconsistent
	// with the segments. A missing manifest means the trace was never
	// finished (the Writer writes it last).
	ErrManifest = errors.New("format: bad manifest")
	// ErrFraming: a record or segment header that cannot be parsed (bad
	// magic, unknown record type or flow, leftover bytes).
	ErrFraming = errors.New("format: bad framing")
	// ErrPack: a packed trace that is not a tar of manifest.json and the
	// segments in order (see FORMAT.md "Packed traces").
	ErrPack = errors.New("format: bad pack")
	// ErrDigest: a trace whose digest is not the one the caller asked for
	// (OpenOptions.Digest).
	ErrDigest = errors.New("format: trace digest differs from the one asked for")
	// ErrWriteAfterClose: Write or Close after Close.
	ErrWriteAfterClose = errors.New("format: write after close")
)

// CorruptionError names the file and byte offset of damage found in a
// trace. Offset counts bytes of the file itself unless InStream is set, in
// which case it counts bytes of the segment's decompressed stream (what
// `zstd -dc` prints), and Record is the 0-based index of the record in that
// segment (-1 when the damage is not inside a record).
//
// In a packed trace, File is the packed file (or URL) and Member the file
// inside it (manifest.json or a segment) that Offset is about; PackOffset
// is then the same byte's offset in the packed file, unless InStream.
// Damage to the pack's own structure has no Member and Offset counts bytes
// of the packed file.
type CorruptionError struct {
	File       string
	Member     string
	Offset     int64
	PackOffset int64
	InStream   bool
	Record     int64
	Err        error
}

func (e *CorruptionError) Error() string {
	where := fmt.Sprintf("file offset %d", e.Offset)
	if e.InStream {
		where = fmt.Sprintf("decompressed offset %d", e.Offset)
	}
	if e.Record >= 0 {
		where += fmt.Sprintf(" (record %d of the segment)", e.Record)
	}
	if e.Member == "" {
		return fmt.Sprintf("%s: %s: %v", e.File, where, e.Err)
	}
	if !e.InStream {
		where += fmt.Sprintf(" (pack offset %d)", e.PackOffset)
	}
	return fmt.Sprintf("%s: member %s: %s: %v", e.File, e.Member, where, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// fileErr reports damage at a byte offset of a file.
func fileErr(file string, off int64, err error) *CorruptionError {
	return &CorruptionError{File: file, Offset: off, Record: -1, Err: err}
}

// streamErr reports damage at an offset of a decompressed segment stream.
func streamErr(file string, off, record int64, err error) *CorruptionError {
	return &CorruptionError{File: file, Offset: off, InStream: true, Record: record, Err: err}
}
