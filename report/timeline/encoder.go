package timeline

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The V2 format's constants, as hdrhistogram-go v1.1.2 writes them
// (hdr_encoding.go, MIT licensed, Copyright (c) 2014 Coda Hale): the inner
// cookie marks the uncompressed form, the outer one the compressed form.
const (
	innerCookie = hdrhistogram.V2EncodingCookieBase | 0x10
	outerCookie = hdrhistogram.V2CompressedEncodingCookieBase | 0x10
	headerSize  = 40
	// The library's getNormalizingIndexOffset and
	// getIntegerToDoubleValueConversionRatio return these constants.
	normalizingIndexOffset         = 1
	integerToDoubleConversionRatio = 1.0
)

// Encoder writes histograms in the form Encode returns, keeping its zlib
// writer and buffers from one histogram to the next: the library builds a
// new best-compression zlib writer, hash tables and all, and a small
// allocation per count for every histogram, and a run encodes several
// every interval, which kept the garbage collector busy during replays.
//
// The zero Encoder is ready to use. It is not safe for concurrent use: its
// buffers belong to the call in progress.
type Encoder struct {
	// mirror is a copy of the histogram being encoded, and snap.Counts
	// its counts array: Import adopts the counts of the Snapshot it is
	// given, so Reset and Merge on mirror refill snap.Counts in place,
	// where Export would allocate a counts array as large as the
	// histogram for every histogram. Import's caller is told to stop
	// using the Snapshot; the Encoder only reads it, between its own
	// calls to mirror, and the tests compare every encoding with the
	// library's.
	mirror *hdrhistogram.Histogram
	snap   *hdrhistogram.Snapshot

	zw         *zlib.Writer // made on first use, then Reset
	raw        []byte       // the uncompressed form: header and counts
	compressed bytes.Buffer // zlib's output
	framed     []byte       // outer cookie, length, compressed form
	text       []byte       // framed, in base64
}

// Encode returns h in HdrHistogram's compressed V2 form (base64 text),
// byte for byte what the library's h.Encode(V2CompressedEncodingCookieBase)
// returns, so that every HdrHistogram implementation reads it.
//
// It follows dumpV2CompressedEncoding, encodeIntoByteBuffer and
// fillBufferFromCountsArray of hdrhistogram-go v1.1.2 (hdr_encoding.go,
// MIT licensed, Copyright (c) 2014 Coda Hale).
func (e *Encoder) Encode(h *hdrhistogram.Histogram) (string, error) {
	snap, err := e.counts(h)
	if err != nil {
		return "", err
	}

	// The uncompressed form: a 40-byte header, then the counts.
	e.raw = binary.BigEndian.AppendUint32(e.raw[:0], uint32(innerCookie))
	e.raw = binary.BigEndian.AppendUint32(e.raw, 0) // the counts' length, known below
	e.raw = binary.BigEndian.AppendUint32(e.raw, normalizingIndexOffset)
	e.raw = binary.BigEndian.AppendUint32(e.raw, uint32(snap.SignificantFigures))
	e.raw = binary.BigEndian.AppendUint64(e.raw, uint64(snap.LowestTrackableValue))
	e.raw = binary.BigEndian.AppendUint64(e.raw, uint64(snap.HighestTrackableValue))
	e.raw = binary.BigEndian.AppendUint64(e.raw, math.Float64bits(integerToDoubleConversionRatio))
	e.raw = appendCounts(e.raw, snap.Counts)
	binary.BigEndian.PutUint32(e.raw[4:8], uint32(len(e.raw)-headerSize))

	e.compressed.Reset()
	if e.zw == nil {
		zw, err := zlib.NewWriterLevel(&e.compressed, zlib.BestCompression)
		if err != nil {
			return "", fmt.Errorf("timeline: encode histogram: %w", err)
		}
		e.zw = zw
	} else {
		e.zw.Reset(&e.compressed)
	}
	if _, err := e.zw.Write(e.raw); err != nil {
		return "", fmt.Errorf("timeline: encode histogram: compress: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return "", fmt.Errorf("timeline: encode histogram: compress: %w", err)
	}

	e.framed = binary.BigEndian.AppendUint32(e.framed[:0], uint32(outerCookie))
	e.framed = binary.BigEndian.AppendUint32(e.framed, uint32(e.compressed.Len()))
	e.framed = append(e.framed, e.compressed.Bytes()...)

	n := base64.StdEncoding.EncodedLen(len(e.framed))
	if cap(e.text) < n {
		e.text = make([]byte, n)
	}
	e.text = e.text[:n]
	base64.StdEncoding.Encode(e.text, e.framed)
	return string(e.text), nil
}

// counts returns a snapshot of h, whose Counts stay valid until the next
// call.
func (e *Encoder) counts(h *hdrhistogram.Histogram) (*hdrhistogram.Snapshot, error) {
	if e.snap == nil || e.snap.LowestTrackableValue != h.LowestTrackableValue() ||
		e.snap.HighestTrackableValue != h.HighestTrackableValue() || e.snap.SignificantFigures != h.SignificantFigures() {
		// The first histogram, or one of another shape: a plain copy,
		// made a mirror only if another histogram follows, so that a
		// single encoding (Encode) costs no second counts array.
		e.snap, e.mirror = h.Export(), nil
		return e.snap, nil
	}
	if e.mirror == nil {
		e.mirror = hdrhistogram.Import(e.snap)
	}
	// Between histograms of one shape a merge is exact: every count
	// lands at the index it had.
	e.mirror.Reset()
	if dropped := e.mirror.Merge(h); dropped != 0 {
		e.snap, e.mirror = nil, nil // start again from an Export
		return nil, fmt.Errorf("timeline: encode histogram: %d values out of range in the copy", dropped)
	}
	return e.snap, nil
}

// appendCounts appends the counts up to the last one that is not zero (at
// least one count, as the library does through countsIndexFor(Max())), each
// in zigzag LEB128, a run of two or more zeros as one negative number.
func appendCounts(b []byte, counts []int64) []byte {
	limit := 1
	for i := len(counts) - 1; i > 0; i-- {
		if counts[i] != 0 {
			limit = i + 1
			break
		}
	}
	for i := 0; i < limit; {
		count := counts[i]
		i++
		zeros := int64(0)
		if count == 0 {
			zeros = 1
			for i < limit && counts[i] == 0 {
				zeros++
				i++
			}
		}
		if zeros > 1 {
			b = appendZigZag(b, -zeros)
		} else {
			b = appendZigZag(b, count)
		}
	}
	return b
}

// appendZigZag appends v zigzag-encoded in the library's LEB128-64b9B: seven
// bits a byte, low first, and at most nine bytes, the ninth carrying eight.
func appendZigZag(b []byte, v int64) []byte {
	u := uint64((v << 1) ^ (v >> 63))
	for range 8 {
		if u < 0x80 {
			return append(b, byte(u))
		}
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}
