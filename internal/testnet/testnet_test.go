package testnet

import (
	"net"
	"testing"
)

// A dial to a dead address is refused.
func TestDeadAddrRefusesDials(t *testing.T) {
	addr := DeadAddr(t)
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("a dial to %s was accepted", addr)
	}
}
