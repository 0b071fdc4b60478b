//go:build !unix

package cputime

import "time"

// Process reports 0 where getrusage is not available.
func Process() time.Duration { return 0 }
