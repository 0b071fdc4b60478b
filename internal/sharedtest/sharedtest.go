// Package sharedtest finds the shared reference folder (../shared beside
// the repository root: the protocol's golden messages, guestbook manifests
// and payloads) for tests in any package of the module.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns ../shared relative to the repository root (the folder that
// holds go.mod). It fails the test when go.mod cannot be found and skips it
// only when the shared folder is truly absent.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); os.IsNotExist(err) {
		tb.Skipf("shared reference folder %s is absent", shared)
	}
	return shared
}

// Examples returns the folder of golden wire messages encoded by the SDK.
func Examples(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Dir(tb), "protocol", "examples")
}
