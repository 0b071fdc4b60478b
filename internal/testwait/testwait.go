// Package testwait waits in tests for a condition rather than for a time:
// a test that sleeps a fixed time passes on a fast machine and fails on a
// loaded one, while a test that polls its condition passes on both.
package testwait

import (
	"testing"
	"time"
)

// Timeout is how long Until waits before it fails the test: long enough for
// a loaded 2-core CI machine, short enough that a hang is seen.
const Timeout = 10 * time.Second

// Until checks cond every few milliseconds and returns once it holds; after
// Timeout it fails the test, naming what it waited for.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
