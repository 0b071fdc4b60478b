package generate

import "bytes"

// template is marshalled bytes with holes: the output of a real marshal of
// an object whose variable fields held unique placeholder strings, cut at
// every placeholder. Filling the holes with values that need no escaping
// and whose length does not change the layout (JSON strings here) gives
// exactly the bytes a marshal of the real object would give, at the cost
// of a few appends.
type template struct {
	parts [][]byte // len(slots)+1 constant pieces
	slots []int    // slots[i]: index of the value that goes after parts[i]
}

// newTemplate cuts b at every occurrence of the placeholders; value i of
// fill replaces placeholders[i]. A placeholder may occur any number of
// times, including none (an Applied-only status shows no Available time).
func newTemplate(b []byte, placeholders ...string) template {
	var t template
	start := 0
	for i := 0; i < len(b); {
		matched := -1
		for p, ph := range placeholders {
			if bytes.HasPrefix(b[i:], []byte(ph)) {
				matched = p
				break
			}
		}
		if matched < 0 {
			i++
			continue
		}
		t.parts = append(t.parts, b[start:i])
		t.slots = append(t.slots, matched)
		i += len(placeholders[matched])
		start = i
	}
	t.parts = append(t.parts, b[start:])
	return t
}

// fill appends the template with its holes filled by vals to dst.
func (t *template) fill(dst []byte, vals ...[]byte) []byte {
	for i, s := range t.slots {
		dst = append(dst, t.parts[i]...)
		dst = append(dst, vals[s]...)
	}
	return append(dst, t.parts[len(t.parts)-1]...)
}

// size returns the length fill would append for values of these lengths.
func (t *template) size(vals ...[]byte) int {
	n := 0
	for i, s := range t.slots {
		n += len(t.parts[i]) + len(vals[s])
	}
	return n + len(t.parts[len(t.parts)-1])
}
