// Package jsonl encodes the lines of cereplay's JSON Lines files (a run's
// timeline, its target samples): one value a line, written as it is, not
// HTML-escaped, so "agent>server" or a URL's "&" read the same in the file
// as in the program.
package jsonl

import (
	"bytes"
	"encoding/json"
)

// Line returns v as one line of JSON, ending in a newline.
func Line(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
