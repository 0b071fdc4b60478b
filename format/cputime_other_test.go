//go:build !unix

package format

import "time"

func processCPU() time.Duration { return 0 }
