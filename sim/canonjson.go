package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// canonicalJSON re-encodes a JSON document exactly as Go's encoding/json
// does after decoding it into interface{} values: compact, object keys
// sorted (the last of duplicate keys wins), strings with Go's escaping,
// numbers as float64. That is what Maestro's JSON map storage does to every
// spec before sending it to an agent.
//
// It walks the bytes once into a flat index and writes them back, copying
// strings and integers verbatim whenever Go would write the same bytes, so
// a guestbook spec is re-encoded several times faster than by
// json.Unmarshal plus json.Marshal. The doc it returns is the same index,
// for checks that need values (validateBundle).
func canonicalJSON(src []byte) ([]byte, *jdoc, error) {
	d := &jdoc{src: src, vals: make([]jval, 0, len(src)/10+1)}
	root, p, err := d.parse(d.skipSpace(0), 0)
	if err == nil && d.skipSpace(p) != len(src) {
		err = errSyntax
	}
	if err != nil {
		// json.Unmarshal's error says what is wrong and where.
		var v any
		if uerr := json.Unmarshal(src, &v); uerr != nil {
			return nil, nil, uerr
		}
		return nil, nil, err
	}
	d.root = root
	out := make([]byte, 0, len(src))
	out, err = d.write(out, root)
	if err != nil {
		return nil, nil, err
	}
	return out, d, nil
}

var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

// jdoc is a parsed JSON document: a flat list of values whose containers
// point at a range of kids.
type jdoc struct {
	src  []byte
	vals []jval
	kids []int32
	root int32
	// escKeys holds the decoded names of members whose name token has
	// escapes, by value index; rare, so kept out of jval.
	escKeys map[int32]string
}

type jval struct {
	kind       byte // '{', '[', '"', '0' (number), 'l' (true, false, null)
	start, end int32
	// keyStart, keyEnd delimit the member name token of a value inside an
	// object; keyEsc says its decoded form is in jdoc.escKeys.
	keyStart, keyEnd int32
	keyEsc           bool
	first, n         int32 // range in kids, for containers
}

func (d *jdoc) skipSpace(p int) int {
	for p < len(d.src) {
		switch d.src[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// parse checks and indexes the value at p and returns its index and the
// position after it.
func (d *jdoc) parse(p, depth int) (int32, int, error) {
	if p >= len(d.src) || depth > maxDepth {
		return 0, 0, errSyntax
	}
	idx := int32(len(d.vals))
	d.vals = append(d.vals, jval{start: int32(p)})
	switch c := d.src[p]; {
	case c == '{' || c == '[':
		var stack [16]int32
		members := stack[:0]
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p = d.skipSpace(p + 1)
		if p < len(d.src) && d.src[p] == closer {
			p++
		} else {
			for {
				var ks, ke int
				if c == '{' {
					if p >= len(d.src) || d.src[p] != '"' {
						return 0, 0, errSyntax
					}
					end, _, err := d.stringEnd(p)
					if err != nil {
						return 0, 0, err
					}
					ks, ke = p, end
					p = d.skipSpace(end)
					if p >= len(d.src) || d.src[p] != ':' {
						return 0, 0, errSyntax
					}
					p = d.skipSpace(p + 1)
				}
				kid, next, err := d.parse(p, depth+1)
				if err != nil {
					return 0, 0, err
				}
				if c == '{' {
					kv := &d.vals[kid]
					kv.keyStart, kv.keyEnd = int32(ks), int32(ke)
					if !plainString(d.src[ks:ke]) {
						key, err := d.decodeString(ks, ke)
						if err != nil {
							return 0, 0, err
						}
						if d.escKeys == nil {
							d.escKeys = make(map[int32]string)
						}
						d.vals[kid].keyEsc = true
						d.escKeys[kid] = key
					}
				}
				members = append(members, kid)
				p = d.skipSpace(next)
				if p >= len(d.src) {
					return 0, 0, errSyntax
				}
				if d.src[p] == closer {
					p++
					break
				}
				if d.src[p] != ',' {
					return 0, 0, errSyntax
				}
				p = d.skipSpace(p + 1)
			}
		}
		first := int32(len(d.kids))
		d.kids = append(d.kids, members...)
		v := &d.vals[idx]
		v.kind, v.first, v.n, v.end = c, first, int32(len(members)), int32(p)
		return idx, p, nil
	case c == '"':
		end, _, err := d.stringEnd(p)
		if err != nil {
			return 0, 0, err
		}
		d.vals[idx].kind, d.vals[idx].end = '"', int32(end)
		return idx, end, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(d.src[p:], []byte(lit)) {
				d.vals[idx].kind, d.vals[idx].end = 'l', int32(p+len(lit))
				return idx, p + len(lit), nil
			}
		}
		return 0, 0, errSyntax
	default:
		end, err := d.numberEnd(p)
		if err != nil {
			return 0, 0, err
		}
		d.vals[idx].kind, d.vals[idx].end = '0', int32(end)
		return idx, end, nil
	}
}

// numberEnd checks the JSON number grammar at p and returns its end.
func (d *jdoc) numberEnd(p int) (int, error) {
	src, i := d.src, p
	digits := func() int {
		n := 0
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(src) && src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case digits() == 0:
		return 0, errSyntax
	}
	if i < len(src) && src[i] == '.' {
		i++
		if digits() == 0 {
			return 0, errSyntax
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, errSyntax
		}
	}
	return i, nil
}

// stringEnd checks the string token at p and returns the position after
// it, and whether it has no escapes.
func (d *jdoc) stringEnd(p int) (int, bool, error) {
	src := d.src
	plain := true
	for i := p + 1; i < len(src); i++ {
		switch c := src[i]; {
		case c == '"':
			return i + 1, plain, nil
		case c < 0x20:
			return 0, false, errSyntax
		case c == '\\':
			plain = false
			i++
			if i >= len(src) {
				return 0, false, errSyntax
			}
			switch src[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(src) {
					return 0, false, errSyntax
				}
				for _, h := range src[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false, errSyntax
					}
				}
				i += 4
			default:
				return 0, false, errSyntax
			}
		}
	}
	return 0, false, errSyntax
}

// plainString reports whether a string token can be copied as is: Go
// would write back the same bytes (no escapes, no characters it escapes,
// valid UTF-8).
func plainString(tok []byte) bool {
	body := tok[1 : len(tok)-1]
	ascii := true
	for _, c := range body {
		switch {
		case c == '\\' || c < 0x20 || c == '<' || c == '>' || c == '&':
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	if ascii {
		return true
	}
	return utf8.Valid(body) && !bytes.Contains(body, []byte("\u2028")) && !bytes.Contains(body, []byte("\u2029"))
}

func (d *jdoc) decodeString(start, end int) (string, error) {
	tok := d.src[start:end]
	if plainString(tok) {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", fmt.Errorf("string at offset %d: %w", start, err)
	}
	return s, nil
}

// str returns the decoded value of a string value, or "" for others.
func (d *jdoc) str(i int32) string {
	if i < 0 {
		return ""
	}
	v := d.vals[i]
	if v.kind != '"' {
		return ""
	}
	s, _ := d.decodeString(int(v.start), int(v.end))
	return s
}

// member finds the value of key in object i (the last one, as a decode
// into a map keeps), or -1.
func (d *jdoc) member(i int32, key string) int32 {
	v := d.vals[i]
	if v.kind != '{' {
		return -1
	}
	found := int32(-1)
	for _, k := range d.kids[v.first : v.first+v.n] {
		if string(d.keyBytes(k)) == key {
			found = k
		}
	}
	return found
}

// keyBytes is the decoded member name of value k.
func (d *jdoc) keyBytes(k int32) []byte {
	v := &d.vals[k]
	if v.keyEsc {
		return []byte(d.escKeys[k])
	}
	return d.src[v.keyStart+1 : v.keyEnd-1]
}

// memberOr is member for any value: -1 unless i is an object with key.
func (d *jdoc) memberOr(i int32, key string) int32 {
	if i < 0 {
		return -1
	}
	return d.member(i, key)
}

// items returns the elements of array i.
func (d *jdoc) items(i int32) []int32 {
	v := d.vals[i]
	if v.kind != '[' {
		return nil
	}
	return d.kids[v.first : v.first+v.n]
}

func (d *jdoc) write(out []byte, i int32) ([]byte, error) {
	v := d.vals[i]
	tok := d.src[v.start:v.end]
	switch v.kind {
	case '{':
		members := d.kids[v.first : v.first+v.n]
		// Stable sort, then keep the last of equal keys.
		slices.SortStableFunc(members, func(a, b int32) int { return bytes.Compare(d.keyBytes(a), d.keyBytes(b)) })
		out = append(out, '{')
		wrote := false
		for j, k := range members {
			if j+1 < len(members) && bytes.Equal(d.keyBytes(members[j+1]), d.keyBytes(k)) {
				continue
			}
			if wrote {
				out = append(out, ',')
			}
			wrote = true
			if kv := &d.vals[k]; kv.keyEsc {
				out = appendString(out, d.escKeys[k])
			} else {
				out = append(out, d.src[kv.keyStart:kv.keyEnd]...)
			}
			out = append(out, ':')
			var err error
			if out, err = d.write(out, k); err != nil {
				return nil, err
			}
		}
		return append(out, '}'), nil
	case '[':
		out = append(out, '[')
		for j, k := range d.kids[v.first : v.first+v.n] {
			if j > 0 {
				out = append(out, ',')
			}
			var err error
			if out, err = d.write(out, k); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	case '"':
		if plainString(tok) {
			return append(out, tok...), nil
		}
		s, err := d.decodeString(int(v.start), int(v.end))
		if err != nil {
			return nil, err
		}
		return appendString(out, s), nil
	case 'l':
		return append(out, tok...), nil
	default:
		if plainInteger(tok) {
			return append(out, tok...), nil
		}
		f, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s at offset %d: %w", tok, v.start, err)
		}
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("number %s at offset %d: %w", tok, v.start, err)
		}
		return append(out, b...), nil
	}
}

// plainInteger reports an integer that float64 holds exactly and Go
// writes back digit for digit.
func plainInteger(tok []byte) bool {
	digits := tok
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendString writes s as Go's encoding/json does.
func appendString(out []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c < 0x20 || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		out = append(out, '"')
		out = append(out, s...)
		return append(out, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(out, b...)
}

// member is an object member given as its name and its JSON value.
type member struct {
	key   string
	value []byte
}

// objectWith writes the root object with the given members set (replaced
// or added), as Go writes the decoded map after setting those keys. The
// root must be an object.
func (d *jdoc) objectWith(extra ...member) ([]byte, error) {
	root := d.vals[d.root]
	if root.kind != '{' {
		return nil, errors.New("not a JSON object")
	}
	type entry struct {
		key []byte
		kid int32 // -1 for an extra
		ext int
	}
	entries := make([]entry, 0, int(root.n)+len(extra))
	for _, k := range d.kids[root.first : root.first+root.n] {
		entries = append(entries, entry{key: d.keyBytes(k), kid: k})
	}
	for i, m := range extra {
		entries = append(entries, entry{key: []byte(m.key), kid: -1, ext: i})
	}
	// Stable: of equal keys the last wins, and extras come after members.
	slices.SortStableFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	out := make([]byte, 0, len(d.src)+64)
	out = append(out, '{')
	wrote := false
	for j, e := range entries {
		if j+1 < len(entries) && bytes.Equal(entries[j+1].key, e.key) {
			continue
		}
		if wrote {
			out = append(out, ',')
		}
		wrote = true
		out = appendString(out, string(e.key))
		out = append(out, ':')
		if e.kid < 0 {
			out = append(out, extra[e.ext].value...)
			continue
		}
		var err error
		if out, err = d.write(out, e.kid); err != nil {
			return nil, err
		}
	}
	return append(out, '}'), nil
}
