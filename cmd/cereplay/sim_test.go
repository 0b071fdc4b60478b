package main

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/syncbuf"
)

func TestSimRunsUntilInterrupted(t *testing.T) {
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"cereplay", "sim", "--consumers", "2",
			"--source-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--rest-listen", "127.0.0.1:0",
			"--metrics-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"}, &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("sim printed %q (stderr %q)", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	addrs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("line %q is not 'name address'", line)
		}
		addrs[f[0]] = f[1]
	}
	resp, err := http.Get(addrs["rest"] + "/api/maestro/v1/consumers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || addrs["source"] == "" || addrs["broker"] == "" || addrs["metrics"] == "" || addrs["health"] == "" {
		t.Fatalf("REST %d, addresses %v", resp.StatusCode, addrs)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after SIGINT, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop on SIGINT")
	}
}

func TestSimUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "extra"}, "takes no arguments"},
		{[]string{"sim", "--source-listen", "nonsense"}, "--source-listen"},
		{[]string{"sim", "--broker-listen", "127.0.0.1:99999"}, "--broker-listen"},
		{[]string{"sim", "--publish-latency", "-1s"}, "--publish-latency"},
		{[]string{"sim", "--heartbeat-interval", "-1s"}, "--heartbeat-interval -1s is negative"},
		{[]string{"sim", "--source-listen", "", "--broker-listen", "", "--rest-listen", "", "--metrics-listen", "", "--health-listen", ""}, "nothing to serve"},
		{[]string{"sim", "--consumers", "-3"}, "--consumers"},
		{[]string{"sim", "--broker-tls-cert", "c.pem"}, "--broker-tls-key"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tc.args, code, stderr, tc.want)
		}
	}
	code, _, stderr := runCLI(t, "sim", "--token-file", "/nonexistent/token", "--source-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0",
		"--rest-listen", "", "--metrics-listen", "", "--health-listen", "")
	if code != 1 || !strings.Contains(stderr, "--token-file") {
		t.Errorf("missing token file: exit %d, stderr %q", code, stderr)
	}
	code, out, _ := runCLI(t, "sim", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--publish-latency") {
		t.Fatalf("--help: %d %q", code, out)
	}
}
