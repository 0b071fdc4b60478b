//go:build !linux

package replay

// threadID is 0 where no test needs it: a pacer hosts the reply
// dispatcher only on Linux (pace.Thread).
func threadID() int { return 0 }
