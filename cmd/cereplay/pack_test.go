package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/replay"
)

// grpcRequests counts the gRPC calls a sim has served.
func grpcRequests(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "sim_grpc_requests_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// pack → verify of the packed file → replay of it from an HTTP server with
// --digest; a pack with one byte changed, or a wrong --digest, is refused
// before anything is sent, with the file and offset named.
func TestPackVerifyReplayOverHTTP(t *testing.T) {
	s, trace := simAndTrace(t, 3, 2)
	m, err := format.ReadManifest(trace)
	if err != nil {
		t.Fatal(err)
	}

	packed := filepath.Join(t.TempDir(), "trace.crp")
	code, stdout, stderr := runCLI(t, "pack", trace, "-o", packed)
	if code != 0 || !strings.Contains(stdout, m.Digest) {
		t.Fatalf("pack: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "verify", "--digest", m.Digest, packed)
	if code != 0 || !strings.HasPrefix(stdout, "ok "+packed) || !strings.Contains(stdout, m.Digest) {
		t.Fatalf("verify of the pack: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	good, err := os.ReadFile(packed)
	if err != nil {
		t.Fatal(err)
	}
	// A copy with one byte of the last segment changed: it ends before
	// its padding to a 512-byte block and the tar's two zero blocks.
	bad := append([]byte(nil), good...)
	last := int(m.Segments[len(m.Segments)-1].CompressedBytes)
	bad[len(bad)-2*512-(512-last%512)%512-10] ^= 0x01
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trace.crp":
			w.Write(good)
		case "/bad.crp":
			w.Write(bad)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	args := func(out, url, digest string) []string {
		return []string{"replay", "--max", "--create-consumers", "--quiet", "--settle", "5s",
			"--source-addr", s.SourceAddr(), "--broker-addr", s.BrokerAddr(), "--rest-url", s.RESTURL(),
			"--out", out, "--digest", digest, url}
	}
	refused := []struct {
		name, url, digest string
		want              []string
	}{
		{"one byte changed", srv.URL + "/bad.crp", m.Digest,
			[]string{"nothing was sent", srv.URL + "/bad.crp: member " + m.Segments[len(m.Segments)-1].Name, "offset"}},
		{"wrong digest", srv.URL + "/trace.crp", "sha256:" + strings.Repeat("0", 64),
			[]string{srv.URL + "/trace.crp: member manifest.json: file offset 15", m.Digest}},
	}
	for _, c := range refused {
		out := filepath.Join(t.TempDir(), "run")
		code, stdout, stderr := runCLI(t, args(out, c.url, c.digest)...)
		if code != 1 || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("%s: exit %d, want 1 and one line\nstdout: %s\nstderr: %s", c.name, code, stdout, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not say %q", c.name, stderr, w)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: the results folder exists: the run started", c.name)
		}
		if n := grpcRequests(t, s.Gatherer()); n != 0 {
			t.Fatalf("%s: the sim served %v gRPC calls: something was sent", c.name, n)
		}
	}

	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr = runCLI(t, args(out, srv.URL+"/trace.crp", m.Digest)...)
	if code != 0 || !strings.Contains(stdout, "replay OK") {
		t.Fatalf("replay of the URL: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	sum, err := replay.ReadSummary(out)
	if err != nil || sum.SpecsSent != 6 || sum.StatusesSent != 6 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	info, err := os.ReadFile(filepath.Join(out, replay.RunFile))
	if err != nil || !strings.Contains(string(info), m.Digest) {
		t.Fatalf("run.json does not name the trace digest: %v", err)
	}

	// inspect and cat read the URL too; a pack of the URL is the pack.
	if code, stdout, _ := runCLI(t, "inspect", srv.URL+"/trace.crp"); code != 0 || !strings.Contains(stdout, m.Digest) {
		t.Errorf("inspect URL: exit %d %q", code, stdout)
	}
	if code, stdout, _ := runCLI(t, "cat", "--limit", "2", packed); code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Errorf("cat pack: exit %d %q", code, stdout)
	}
	again := filepath.Join(t.TempDir(), "again.crp")
	if code, _, stderr := runCLI(t, "pack", "-o", again, srv.URL+"/trace.crp"); code != 0 {
		t.Fatalf("pack of a URL: %s", stderr)
	}
	if b, _ := os.ReadFile(again); string(b) != string(good) {
		t.Error("packing the URL of a pack gave other bytes")
	}
	if code, _, stderr := runCLI(t, "verify", "--digest", "sha256:nope", packed); code != 2 || !strings.Contains(stderr, "--digest") {
		t.Errorf("malformed --digest: exit %d %q", code, stderr)
	}
}

func TestInspectShards(t *testing.T) {
	dir := generatedTrace(t)
	code, stdout, stderr := runCLI(t, "inspect", "--shards", "2", dir)
	if code != 0 || !strings.Contains(stdout, "0/2") || !strings.Contains(stdout, "1/2") ||
		!strings.Contains(stdout, "spread") || !strings.Contains(stdout, "by name hash") {
		t.Fatalf("inspect --shards 2: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "inspect", "--shards", "2", "--json", dir)
	if code != 0 || !strings.Contains(stdout, `"plan"`) || !strings.Contains(stdout, `"clusters": 1`) {
		t.Fatalf("inspect --shards 2 --json: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "inspect", "--shards", "0", dir); code != 2 || !strings.Contains(stderr, "--shards 0") {
		t.Fatalf("inspect --shards 0: exit %d %s", code, stderr)
	}
}

func TestMergeUsage(t *testing.T) {
	if code, _, stderr := runCLI(t, "merge", "--out", t.TempDir()); code != 2 || !strings.Contains(stderr, "missing RUN") {
		t.Errorf("merge without runs: exit %d %q", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "nothing")
	if code, _, stderr := runCLI(t, "merge", "--out", filepath.Join(t.TempDir(), "m"), missing); code != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("merge of a missing run: exit %d %q", code, stderr)
	}
}
