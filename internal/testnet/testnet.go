// Package testnet gives tests network addresses to dial.
package testnet

import (
	"net"
	"testing"
)

// DeadAddr is a loopback address nothing listens on: a port that was free
// a moment ago, so a dial to it is refused at once rather than timing out.
func DeadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
