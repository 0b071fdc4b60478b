package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGenerateStopsOnSignal runs generate of the full default trace in a
// child process (this test binary, re-executed) and signals it once it has
// written a segment: it must stop promptly, exit 1 with one line saying
// why, and leave nothing behind.
func TestGenerateStopsOnSignal(t *testing.T) {
	runIfChild()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "trace")
			cmd := childCommand("TestGenerateStopsOnSignal", "generate", "--out", dir, "-q")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				segs, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst"))
				if len(segs) > 0 {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("generate ended before writing a segment: %v, stderr %q", err, stderr.String())
				case <-tick.C:
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("generate still running 30 s after %v", sig)
			}
			t.Logf("stopped %v after the signal: %s", time.Since(signalled).Round(time.Millisecond), stderr.String())
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1 (stderr %q)", err, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, sig.String()+" signal received") || !strings.Contains(msg, "removed") {
				t.Errorf("stderr %q: want one line naming the signal and saying the trace was removed", msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q: a stopped generation printed a summary", stdout.String())
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after the signal: %v", dir, err)
			}
			if code, _, _ := runCLI(t, "verify", dir); code != 1 {
				t.Errorf("verify of the stopped trace: exit %d, want 1", code)
			}
		})
	}
}
