package format

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// packFile packs the trace at src into a file in a temporary folder and
// returns its path and bytes.
func packFile(tb testing.TB, src string) (string, []byte) {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := Pack(context.Background(), src, &buf, OpenOptions{}); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "trace"+PackExt)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, buf.Bytes()
}

// readSource reads every record of src and returns copies of them.
func readSource(src string, opts OpenOptions) ([]Record, error) {
	r, err := OpenSource(context.Background(), src, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		c := *rec
		c.Data = bytes.Clone(rec.Data)
		recs = append(recs, c)
	}
}

func TestPackRoundTrip(t *testing.T) {
	dir := seedTrace(t)
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, b := packFile(t, dir)
	_, again := packFile(t, dir)
	if !bytes.Equal(b, again) {
		t.Fatal("packing the same trace twice gave different bytes")
	}
	// Re-packing the pack gives the pack.
	if _, fromPack := packFile(t, path); !bytes.Equal(b, fromPack) {
		t.Fatal("packing a packed trace changed its bytes")
	}

	// An ordinary tar: manifest.json first, the segments in order, as they are.
	tr := tar.NewReader(bytes.NewReader(b))
	want := []string{ManifestName}
	for _, s := range m.Segments {
		want = append(want, s.Name)
	}
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		content, _ := io.ReadAll(tr)
		if onDisk := mustRead(t, filepath.Join(dir, hdr.Name)); !bytes.Equal(content, onDisk) {
			t.Fatalf("member %s differs from the file in the folder", hdr.Name)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("members %v, want %v", names, want)
	}

	if _, errs := VerifySource(context.Background(), path, OpenOptions{Digest: m.Digest}); len(errs) > 0 {
		t.Fatalf("verify of the pack: %v", errs)
	}
	fromDir, err := readSource(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromPack, err := readSource(path, OpenOptions{Digest: m.Digest})
	if err != nil {
		t.Fatal(err)
	}
	if len(fromPack) != len(fromDir) || int64(len(fromDir)) != m.Records {
		t.Fatalf("%d records from the pack, %d from the folder, manifest %d", len(fromPack), len(fromDir), m.Records)
	}
	for i := range fromDir {
		if !equalRecords(&fromDir[i], &fromPack[i]) {
			t.Fatalf("record %d differs between folder and pack", i)
		}
	}
	got, err := ReadSourceManifest(context.Background(), path, OpenOptions{})
	if err != nil || got.Digest != m.Digest {
		t.Fatalf("manifest of the pack: %v, digest %v", err, got)
	}
}

func TestPackOverHTTP(t *testing.T) {
	dir := seedTrace(t)
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, b := packFile(t, dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/trace.crp" {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	url := srv.URL + "/trace.crp"

	recs, err := readSource(url, OpenOptions{Digest: m.Digest})
	if err != nil || int64(len(recs)) != m.Records {
		t.Fatalf("read over HTTP: %d records, %v", len(recs), err)
	}
	if _, errs := VerifySource(context.Background(), url, OpenOptions{Digest: m.Digest}); len(errs) > 0 {
		t.Fatalf("verify over HTTP: %v", errs)
	}

	wrong := "sha256:" + strings.Repeat("ab", 32)
	_, err = OpenSource(context.Background(), url, OpenOptions{Digest: wrong})
	var ce *CorruptionError
	if !errors.Is(err, ErrDigest) || !errors.As(err, &ce) || ce.File != url || ce.Member != ManifestName {
		t.Fatalf("wrong digest: %v, want ErrDigest naming %s member %s", err, url, ManifestName)
	}
	if !strings.Contains(err.Error(), m.Digest) || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong digest error %q does not give both digests", err)
	}
	if _, err := OpenSource(context.Background(), srv.URL+"/nothing.crp", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing URL: %v, want an error naming HTTP 404", err)
	}
	if _, err := OpenSource(context.Background(), url, OpenOptions{Digest: "sha256:ABC"}); err == nil || !strings.Contains(err.Error(), "64 lowercase hex") {
		t.Fatalf("malformed digest: %v", err)
	}
}

// TestPackEveryByte changes the bytes of a pack in turn: every change is
// refused by VerifySource with an error naming the packed file, and a
// reader returns an error too unless the byte is after the last segment
// (which a reader never reads).
func TestPackEveryByte(t *testing.T) {
	dir := seedTrace(t)
	m, _ := ReadManifest(dir)
	_, b := packFile(t, dir)
	// The last segment ends before its padding and the two zero blocks.
	last := m.Segments[len(m.Segments)-1].CompressedBytes
	lastData := int64(len(b)) - 2*packBlock - (packBlock-last%packBlock)%packBlock
	step := 5 // every byte takes 10 s
	if testing.Short() {
		step = 37
	}
	path := filepath.Join(t.TempDir(), "damaged"+PackExt)
	for i := 0; i < len(b); i += step {
		d := bytes.Clone(b)
		d[i] ^= 0x20
		if err := os.WriteFile(path, d, 0o644); err != nil {
			t.Fatal(err)
		}
		_, errs := VerifySource(context.Background(), path, OpenOptions{})
		if len(errs) == 0 {
			t.Fatalf("byte %d changed: verify found nothing", i)
		}
		var ce *CorruptionError
		if !errors.As(errs[0], &ce) || ce.File != path {
			t.Fatalf("byte %d changed: %v is not a *CorruptionError naming %s", i, errs[0], path)
		}
		if ce.Member == "" && ce.Offset > int64(i) {
			t.Fatalf("byte %d changed: error at pack offset %d, after the damage: %v", i, ce.Offset, ce)
		}
		recs, err := readSource(path, OpenOptions{Digest: m.Digest})
		if err == nil && int64(i) < lastData {
			t.Fatalf("byte %d changed: read %d records without an error", i, len(recs))
		}
	}
}

func TestPackDamageNamesMemberAndOffset(t *testing.T) {
	dir := seedTrace(t)
	m, _ := ReadManifest(dir)
	if len(m.Segments) < 2 {
		t.Fatalf("seed trace has %d segments, want 2 or more", len(m.Segments))
	}
	_, b := packFile(t, dir)
	// Where segment 2's data starts: after manifest and segment 1, each
	// with its header block and padded to a block.
	pad := func(n int64) int64 { return (n + packBlock - 1) / packBlock * packBlock }
	seg2 := packBlock + pad(int64(len(mustRead(t, filepath.Join(dir, ManifestName))))) + packBlock + pad(m.Segments[0].CompressedBytes) + packBlock
	path := filepath.Join(t.TempDir(), "damaged"+PackExt)

	d := bytes.Clone(b)
	d[seg2+m.Segments[1].CompressedBytes/2] ^= 1
	mustWrite(t, path, d)
	_, err := readSource(path, OpenOptions{})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != path || ce.Member != m.Segments[1].Name || !errors.Is(err, ErrChecksum) {
		t.Fatalf("segment 2 damaged: %v, want a checksum error in member %s of %s", err, m.Segments[1].Name, path)
	}
	if !ce.InStream && ce.PackOffset != seg2+ce.Offset {
		t.Fatalf("pack offset %d, want %d + %d", ce.PackOffset, seg2, ce.Offset)
	}
	if !strings.Contains(err.Error(), path+": member "+m.Segments[1].Name) {
		t.Fatalf("error %q does not name the file and member", err)
	}

	// A padding byte tar itself ignores.
	d = bytes.Clone(b)
	end := seg2 - packBlock // header of segment 2 ...
	padAt := end - 1        // ... and the last padding byte of segment 1 before it
	if (seg2-2*packBlock-pad(m.Segments[0].CompressedBytes))+m.Segments[0].CompressedBytes+packBlock > padAt {
		t.Skip("segment 1 fills its last block: no padding to damage")
	}
	d[padAt] = 'x'
	mustWrite(t, path, d)
	_, err = readSource(path, OpenOptions{})
	if !errors.As(err, &ce) || !errors.Is(err, ErrPack) || ce.Offset != padAt || ce.Member != "" {
		t.Fatalf("padding damaged: %v, want ErrPack at pack offset %d", err, padAt)
	}
}

func TestPackTruncated(t *testing.T) {
	dir := seedTrace(t)
	_, b := packFile(t, dir)
	path := filepath.Join(t.TempDir(), "short"+PackExt)
	for _, n := range []int{0, 100, packBlock, packBlock + 10, len(b) / 2, len(b) - 2*packBlock - 1, len(b) - packBlock, len(b) - 1} {
		mustWrite(t, path, b[:n])
		_, errs := VerifySource(context.Background(), path, OpenOptions{})
		var ce *CorruptionError
		if len(errs) == 0 || !errors.As(errs[0], &ce) || ce.File != path {
			t.Fatalf("pack cut to %d of %d bytes: %v", n, len(b), errs)
		}
		if !errors.Is(errs[0], ErrTruncated) {
			t.Fatalf("pack cut to %d bytes: %v, want ErrTruncated", n, errs[0])
		}
	}
}

func TestPackRefusesOtherArchives(t *testing.T) {
	dir := seedTrace(t)
	m, _ := ReadManifest(dir)
	write := func(names []string, hdr func(*tar.Header)) string {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range names {
			content := mustRead(t, filepath.Join(dir, n))
			h := packHeader(n, int64(len(content)))
			if hdr != nil {
				hdr(h)
			}
			tw.WriteHeader(h)
			tw.Write(content)
		}
		tw.Close()
		path := filepath.Join(t.TempDir(), "other"+PackExt)
		mustWrite(t, path, buf.Bytes())
		return path
	}
	all := []string{ManifestName}
	for _, s := range m.Segments {
		all = append(all, s.Name)
	}
	cases := map[string]struct {
		path string
		want string
	}{
		"segments first":      {write(append(all[1:], all[0]), nil), `member 1 is "00000001.seg.zst", want manifest.json`},
		"a segment missing":   {write(append([]string{all[0]}, all[2:]...), nil), "want 00000001.seg.zst"},
		"another mode":        {write(all, func(h *tar.Header) { h.Mode = 0o600 }), "differs from what cereplay pack writes"},
		"a member too many":   {write(append(slices.Clone(all), ManifestName), nil), `member "manifest.json" after the last segment`},
		"folder-style prefix": {write(all, func(h *tar.Header) { h.Name = "./" + h.Name }), `member 1 is "./manifest.json"`},
	}
	for name, c := range cases {
		_, errs := VerifySource(context.Background(), c.path, OpenOptions{})
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want) || !strings.Contains(errs[0].Error(), c.path) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", name, errs, c.path, c.want)
		}
	}
}

// TestSpecPack builds a pack from FORMAT.md §8 alone: a ustar archive of
// manifest.json and the segments, each header a regular file of mode 0644,
// owner 0:0 and time 0, two zero blocks at the end. Pack must give those
// bytes.
func TestSpecPack(t *testing.T) {
	dir := seedTrace(t)
	m, _ := ReadManifest(dir)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := []string{ManifestName}
	for _, s := range m.Segments {
		names = append(names, s.Name)
	}
	for _, n := range names {
		b := mustRead(t, filepath.Join(dir, n))
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Size: int64(len(b)), Mode: 0o644,
			ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	if _, got := packFile(t, dir); !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("Pack does not write the bytes FORMAT.md §8 describes")
	}
}

// A download of a pack whose connection breaks is resumed from the first
// byte not read (a Range request against the first response's ETag); a
// server that cannot resume, or that breaks every time, ends the read with
// the error.
func TestPackOverHTTPResumes(t *testing.T) {
	dir := seedTrace(t)
	m, _ := ReadManifest(dir)
	_, b := packFile(t, dir)
	var mu sync.Mutex
	requests, ranges := 0, 0
	serve := func(etag string, breakEvery bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			requests++
			first := requests == 1
			if r.Header.Get("Range") != "" {
				ranges++
			}
			mu.Unlock()
			if etag != "" {
				w.Header().Set("ETag", etag)
			}
			if first || breakEvery {
				// Part of the body, then the connection drops.
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				start := 0
				if rg := r.Header.Get("Range"); rg != "" {
					fmt.Sscanf(rg, "bytes=%d-", &start)
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
					w.Header().Set("Content-Length", strconv.Itoa(len(b)-start))
					w.WriteHeader(http.StatusPartialContent)
				}
				chunk := 1000
				if breakEvery {
					chunk = 100 // six responses do not make the whole pack
				}
				w.Write(b[start : start+min(len(b)-start, chunk)])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			http.ServeContent(w, r, "trace.crp", time.Time{}, bytes.NewReader(b))
		}))
	}
	reset := func() { mu.Lock(); requests, ranges = 0, 0; mu.Unlock() }

	srv := serve(`"v1"`, false)
	defer srv.Close()
	recs, err := readSource(srv.URL+"/trace.crp", OpenOptions{Digest: m.Digest})
	if err != nil || int64(len(recs)) != m.Records {
		t.Fatalf("resumed download: %d records, %v", len(recs), err)
	}
	if requests < 2 || ranges < 1 {
		t.Fatalf("%d requests, %d with a Range: the broken download was not resumed", requests, ranges)
	}

	reset()
	noValidator := serve("", false)
	defer noValidator.Close()
	if _, err := readSource(noValidator.URL+"/trace.crp", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "not resumed") {
		t.Fatalf("a server without ETag or Last-Modified: %v, want the break reported as not resumed", err)
	}

	reset()
	alwaysBreaks := serve(`"v1"`, true)
	defer alwaysBreaks.Close()
	if _, err := readSource(alwaysBreaks.URL+"/trace.crp", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "resumed 5 times") {
		t.Fatalf("a server that breaks every time: %v, want the read to give up after 5 resumes", err)
	}
}
