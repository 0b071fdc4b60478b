package format

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// castagnoli is the CRC32C table for record checksums (hardware-assisted
// on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// flagTrigger is bit 0 of a record's flags byte: trigger and delay follow.
const flagTrigger = 1 << 0

// Validate reports what makes r unwritable, or nil.
func (r *Record) Validate() error {
	if err := r.validateFields(); err != nil {
		return err
	}
	return checkSize(recordBodySize(r))
}

func (r *Record) validateFields() error {
	switch r.Type {
	case TypeEvent:
		if !r.Flow.Valid() {
			return fmt.Errorf("format: record has invalid flow %d", r.Flow)
		}
	case TypeOutcome:
		if r.Flow != 0 && !r.Flow.Valid() {
			return fmt.Errorf("format: outcome record has invalid flow %d", r.Flow)
		}
		if !r.Outcome.Status.Valid() {
			return fmt.Errorf("format: outcome record has invalid status %d", r.Outcome.Status)
		}
	default:
		return fmt.Errorf("format: invalid record type %d", r.Type)
	}
	if r.Offset < 0 {
		return fmt.Errorf("format: record has negative offset %s", r.Offset)
	}
	return nil
}

func checkSize(n int) error {
	if n > MaxRecordSize {
		return fmt.Errorf("format: record body is %d bytes, over the limit of %d", n, MaxRecordSize)
	}
	return nil
}

func uvarintSize(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintSize(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintSize(ux)
}

func bytesSize(n int) int { return uvarintSize(uint64(n)) + n }

// recordBodySize is the encoded size of r's body (without length and CRC).
func recordBodySize(r *Record) int {
	n := 1 + uvarintSize(uint64(r.Offset)) + 1 +
		bytesSize(len(r.Actor)) + bytesSize(len(r.ResourceID)) + bytesSize(len(r.EventType)) +
		1 + bytesSize(len(r.Data))
	if r.HasTrigger {
		n += uvarintSize(r.Trigger) + varintSize(int64(r.Delay))
	}
	if r.Type == TypeOutcome {
		o := &r.Outcome
		n += uvarintSize(o.Index) + 1 + uvarintSize(uint64(o.Code)) +
			varintSize(int64(o.Lateness)) + varintSize(int64(o.Latency)) + varintSize(int64(o.Delivery)) +
			bytesSize(len(o.Note))
	}
	return n
}

// AppendRecord appends the framed record r (length, body, CRC32C; see
// FORMAT.md) to dst and returns the extended slice. r must pass Validate.
func AppendRecord(dst []byte, r *Record) []byte {
	return appendRecord(dst, r, recordBodySize(r))
}

// appendRecord is AppendRecord with the body size already computed.
func appendRecord(dst []byte, r *Record, size int) []byte {
	dst = binary.AppendUvarint(dst, uint64(size))
	start := len(dst)
	dst = append(dst, byte(r.Type))
	dst = binary.AppendUvarint(dst, uint64(r.Offset))
	dst = append(dst, byte(r.Flow))
	dst = appendString(dst, r.Actor)
	dst = appendString(dst, r.ResourceID)
	dst = appendString(dst, r.EventType)
	var flags byte
	if r.HasTrigger {
		flags |= flagTrigger
	}
	dst = append(dst, flags)
	if r.HasTrigger {
		dst = binary.AppendUvarint(dst, r.Trigger)
		dst = binary.AppendVarint(dst, int64(r.Delay))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
	dst = append(dst, r.Data...)
	if r.Type == TypeOutcome {
		o := &r.Outcome
		dst = binary.AppendUvarint(dst, o.Index)
		dst = append(dst, byte(o.Status))
		dst = binary.AppendUvarint(dst, uint64(o.Code))
		dst = binary.AppendVarint(dst, int64(o.Lateness))
		dst = binary.AppendVarint(dst, int64(o.Latency))
		dst = binary.AppendVarint(dst, int64(o.Delivery))
		dst = appendString(dst, o.Note)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decbuf decodes fields from a record body with a sticky error: the first
// failure stops every later read, and the caller checks err once.
type decbuf struct {
	b   []byte
	off int
	err error
}

func (d *decbuf) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decbuf) byte1(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("%w: record body ends inside %s", ErrTruncated, field)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decbuf) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b[d.off:])
	if !d.advance(n, field) {
		return 0
	}
	return x
}

func (d *decbuf) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b[d.off:])
	if !d.advance(n, field) {
		return 0
	}
	return x
}

// advance moves past a varint of n bytes as encoding/binary reports it:
// 0 means the body ended inside it, a negative n that it overflows.
func (d *decbuf) advance(n int, field string) bool {
	switch {
	case n == 0:
		d.fail("%w: record body ends inside %s", ErrTruncated, field)
		return false
	case n < 0:
		d.fail("%w: %s overflows 64 bits", ErrFraming, field)
		return false
	}
	d.off += n
	return true
}

// bytes reads a uvarint length and that many bytes, without copying.
func (d *decbuf) bytes(field string) []byte {
	if d.err != nil {
		return nil
	}
	n, w := binary.Uvarint(d.b[d.off:])
	if w <= 0 {
		if w == 0 {
			d.fail("%w: record body ends inside the length of %s", ErrTruncated, field)
		} else {
			d.fail("%w: length of %s overflows 64 bits", ErrFraming, field)
		}
		return nil
	}
	d.off += w
	if n > uint64(len(d.b)-d.off) {
		d.fail("%w: %s of %d bytes runs past the record body (%d bytes left)", ErrTruncated, field, n, len(d.b)-d.off)
		return nil
	}
	b := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

// interner shares the string of values that repeat across records (actors,
// event types) so a segment's records do not each allocate a copy.
type interner map[string]string

func (in interner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

// DecodeRecord decodes one record body (the bytes between the length
// prefix and the CRC) into r. r.Data aliases body; strings are copied.
// It rejects unknown types, flows, flags and leftover bytes.
func DecodeRecord(body []byte, r *Record) error {
	return decodeRecord(body, r, nil)
}

func decodeRecord(body []byte, r *Record, in interner) error {
	d := decbuf{b: body}
	*r = Record{}
	r.Type = RecordType(d.byte1("type"))
	if d.err == nil && r.Type != TypeEvent && r.Type != TypeOutcome {
		return fmt.Errorf("%w: unknown record type %d", ErrFraming, r.Type)
	}
	off := d.uvarint("offset")
	if off > 1<<63-1 {
		d.fail("%w: offset %d overflows", ErrFraming, off)
	}
	r.Offset = time.Duration(off)
	r.Flow = Flow(d.byte1("flow"))
	actor := d.bytes("actor")
	rid := d.bytes("resource id")
	et := d.bytes("event type")
	flags := d.byte1("flags")
	if d.err == nil && flags&^flagTrigger != 0 {
		d.fail("%w: unknown flag bits %#x", ErrFraming, flags&^flagTrigger)
	}
	if flags&flagTrigger != 0 {
		r.HasTrigger = true
		r.Trigger = d.uvarint("trigger")
		r.Delay = time.Duration(d.varint("delay"))
	}
	r.Data = d.bytes("data")
	if r.Type == TypeOutcome {
		o := &r.Outcome
		o.Index = d.uvarint("outcome index")
		o.Status = OutcomeStatus(d.byte1("outcome status"))
		code := d.uvarint("outcome code")
		if code > 1<<32-1 {
			d.fail("%w: outcome code %d overflows 32 bits", ErrFraming, code)
		}
		o.Code = uint32(code)
		o.Lateness = time.Duration(d.varint("lateness"))
		o.Latency = time.Duration(d.varint("latency"))
		o.Delivery = time.Duration(d.varint("delivery"))
		o.Note = string(d.bytes("note"))
	}
	if d.err != nil {
		return d.err
	}
	if d.off != len(body) {
		return fmt.Errorf("%w: %d leftover bytes after the record body", ErrFraming, len(body)-d.off)
	}
	if r.Type == TypeEvent && !r.Flow.Valid() || r.Type == TypeOutcome && r.Flow != 0 && !r.Flow.Valid() {
		return fmt.Errorf("%w: unknown flow %d", ErrFraming, r.Flow)
	}
	if r.Type == TypeOutcome && !r.Outcome.Status.Valid() {
		return fmt.Errorf("%w: unknown outcome status %d", ErrFraming, r.Outcome.Status)
	}
	if in == nil {
		r.Actor, r.EventType = string(actor), string(et)
	} else {
		r.Actor, r.EventType = in.str(actor), in.str(et)
	}
	r.ResourceID = string(rid)
	return nil
}

// segmentHeader is the start of every decompressed segment stream.
func appendSegmentHeader(dst []byte) []byte {
	dst = append(dst, segmentMagic...)
	return append(dst, FormatVersion)
}

// decodeSegment parses a whole decompressed segment stream. Records' Data
// alias raw. file names the segment in errors. Offsets must not decrease.
func decodeSegment(file string, raw []byte) ([]Record, error) {
	return decodeSegmentInto(file, raw, nil, true)
}

// decodeSegmentInto is decodeSegment appending to recs (empty, or nil to
// allocate), so a reader can reuse the records of a finished segment.
// Without checkCRC it does not check the records' CRC-32C: for a stream
// whose file matched its SHA-256, which says more (see readerDecoders).
func decodeSegmentInto(file string, raw []byte, recs []Record, checkCRC bool) ([]Record, error) {
	if len(raw) < segmentHeaderSize {
		return nil, streamErr(file, int64(len(raw)), -1, fmt.Errorf("%w: stream is %d bytes, shorter than the %d-byte segment header", ErrTruncated, len(raw), segmentHeaderSize))
	}
	if string(raw[:len(segmentMagic)]) != segmentMagic {
		return nil, streamErr(file, 0, -1, fmt.Errorf("%w: segment magic %q, want %q", ErrFraming, raw[:len(segmentMagic)], segmentMagic))
	}
	if v := raw[len(segmentMagic)]; v != FormatVersion {
		return nil, streamErr(file, int64(len(segmentMagic)), -1, fmt.Errorf("%w: segment version %d, this reader knows %d", ErrVersion, v, FormatVersion))
	}
	if recs == nil {
		recs = make([]Record, 0, len(raw)/4096+1)
	}
	in := interner{}
	off := segmentHeaderSize
	var last time.Duration
	for off < len(raw) {
		idx := int64(len(recs))
		n, w := binary.Uvarint(raw[off:])
		if w <= 0 {
			if w == 0 {
				return recs, streamErr(file, int64(off), idx, fmt.Errorf("%w: stream ends inside a record length", ErrTruncated))
			}
			return recs, streamErr(file, int64(off), idx, fmt.Errorf("%w: record length overflows 64 bits", ErrFraming))
		}
		if n > MaxRecordSize {
			return recs, streamErr(file, int64(off), idx, fmt.Errorf("%w: record length %d over the limit of %d", ErrFraming, n, MaxRecordSize))
		}
		body := off + w
		end := body + int(n)
		if end+4 > len(raw) {
			return recs, streamErr(file, int64(off), idx, fmt.Errorf("%w: record of %d bytes + CRC runs past the end of the stream (%d bytes left)", ErrTruncated, n, len(raw)-body))
		}
		if checkCRC {
			want := binary.BigEndian.Uint32(raw[end:])
			if got := crc32.Checksum(raw[body:end], castagnoli); got != want {
				return recs, streamErr(file, int64(off), idx, fmt.Errorf("%w: record CRC32C %08x, stored %08x", ErrChecksum, got, want))
			}
		}
		recs = append(recs, Record{})
		r := &recs[len(recs)-1]
		if err := decodeRecord(raw[body:end:end], r, in); err != nil {
			return recs[:len(recs)-1], streamErr(file, int64(off), idx, err)
		}
		if r.Offset < last {
			return recs[:len(recs)-1], streamErr(file, int64(off), idx, fmt.Errorf("%w: offset %d ns after %d ns", ErrOrder, r.Offset, last))
		}
		last = r.Offset
		off = end + 4
	}
	return recs, nil
}
