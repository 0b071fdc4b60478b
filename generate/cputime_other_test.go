//go:build !unix

package generate

import "time"

func processCPU() time.Duration { return 0 }
