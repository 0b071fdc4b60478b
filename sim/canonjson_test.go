package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cereplay/cereplay/internal/fixtures"
)

// reference is what Maestro does: decode into interface{} and marshal.
func reference(src []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(src, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func TestCanonicalJSON(t *testing.T) {
	cases := []string{
		`{"b":1,"a":[true,false,null],"c":{"z":"x","y":""}}`,
		` { "a" : 1.0 , "b" : 1e3, "c": -0, "d": 12345678901234567890, "e": 0.000001, "f": 1e-7, "g": 1.5e300 } `,
		`{"html":"<a href=\"x\">&</a>","u":"\u00e9\u2028","esc":"\n\t\\","bad":"` + "\xff" + `"}`,
		`{"dup":1,"dup":2,"a":{"k":1,"k":{"z":1,"a":2}}}`,
		`{"\u0062":1,"a":2,"é":3,"e":4}`,
		`[]`, `{}`, `"s"`, `7`, `null`, `[{"b":1,"a":2},[],{}]`,
	}
	shared := fixtures.Payloads(t)
	files, _ := filepath.Glob(filepath.Join(shared, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(b))
	}
	if len(files) == 0 {
		t.Fatal("no payload files in", shared)
	}
	for _, c := range cases {
		want, err := reference([]byte(c))
		if err != nil {
			t.Fatalf("reference %q: %v", c, err)
		}
		got, _, err := canonicalJSON([]byte(c))
		if err != nil {
			t.Fatalf("canonicalJSON %q: %v", c, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("canonicalJSON(%.80q)\n got %s\nwant %s", c, got, want)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `{"a":1}x`, `nul`} {
		if _, _, err := canonicalJSON([]byte(bad)); err == nil {
			t.Errorf("canonicalJSON(%q) accepted invalid JSON", bad)
		}
	}
}

// FuzzCanonicalJSON checks canonicalJSON against decode-and-marshal on any
// input: same bytes for valid JSON, an error for invalid.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.5,"x<"]}`, `[{"k":{"k":1,"k":2}}]`, `"\u2029"`, `1e21`, `-12.5e-3`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := reference(b)
		got, _, gerr := canonicalJSON(b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: reference err %v, canonicalJSON err %v", b, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", b, got, want)
		}
		if wantWith, err := referenceWith(b); err == nil {
			gotWith, err := objectWithNameAndTime(b)
			if err != nil || !bytes.Equal(gotWith, wantWith) {
				t.Fatalf("objectWith(%q):\n got %s (%v)\nwant %s", b, gotWith, err, wantWith)
			}
		}
	})
}

// referenceWith decodes an object, sets name and creationTimestamp and
// marshals it: what Maestro does to work metadata.
func referenceWith(src []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(src, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	m["name"] = "id-<1>"
	m["creationTimestamp"] = "2024-12-20T08:30:00Z"
	return json.Marshal(m)
}

func objectWithNameAndTime(src []byte) ([]byte, error) {
	_, d, err := canonicalJSON(src)
	if err != nil {
		return nil, err
	}
	return d.objectWith(member{"name", appendString(nil, "id-<1>")}, member{"creationTimestamp", []byte(`"2024-12-20T08:30:00Z"`)})
}

func TestObjectWith(t *testing.T) {
	for _, c := range []string{
		`{}`, `{"name":"w","namespace":"c","labels":{"b":"1","a":"2"}}`,
		`{"uid":"u","name":1,"name":2,"annotations":{"x":"<y>"},"creationTimestamp":"old"}`,
		`{"\u006eame":"escaped key","zz":null}`,
	} {
		want, err := referenceWith([]byte(c))
		if err != nil {
			t.Fatal(err)
		}
		got, err := objectWithNameAndTime([]byte(c))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("objectWith(%s)\n got %s (%v)\nwant %s", c, got, err, want)
		}
	}
	if _, err := objectWithNameAndTime([]byte(`[1]`)); err == nil {
		t.Error("objectWith accepted an array")
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	src, err := os.ReadFile(filepath.Join(fixtures.Payloads(b), "guestbook-manifestbundle.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("canonicalJSON", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, _, err := canonicalJSON(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal+marshal", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, err := reference(src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
