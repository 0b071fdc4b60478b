package replay

import "golang.org/x/sys/unix"

// threadID is the calling thread's id: a goroutine locked to its thread
// is the only one to run there.
func threadID() int { return unix.Gettid() }
