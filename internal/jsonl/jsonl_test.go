package jsonl

import "testing"

func TestLineNotEscaped(t *testing.T) {
	got, err := Line(map[string]string{"flow": "agent>server", "url": "http://a/?x=1&y=<2>"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"flow":"agent>server","url":"http://a/?x=1&y=<2>"}` + "\n"; string(got) != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
}
