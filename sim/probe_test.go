package sim

import (
	"fmt"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func BenchmarkProbe(b *testing.B) {
	e := newBenchEnv(b)
	f, _ := os.Create("/tmp/publish.prof")
	pprof.StartCPUProfile(f)
	cpu := cpuTime()
	start := time.Now()
	e.createSpecs(b, 0, 8000)
	waitCount(b, &e.specs, 8000, "specs")
	pprof.StopCPUProfile()
	fmt.Println("delivered in", time.Since(start), "cpu", cpuTime()-cpu)
}
