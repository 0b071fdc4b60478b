package sim

import (
	"testing"
)

// testutilGauge reads a gauge or counter value with one label value from
// the server's registry (0 when absent).
func testutilGauge(t testing.TB, srv *Server, name, label string) float64 {
	t.Helper()
	mfs, err := srv.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	}
	return 0
}
