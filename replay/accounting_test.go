package replay

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Each latency lands in the summary's histogram and in the live histogram
// of its own kind, and in no other kind.
func TestAccountingLatencyKinds(t *testing.T) {
	a := newAccounting()
	a.published("127.0.0.1:1", time.Millisecond, time.Now(), nil)
	for range 2 {
		a.delivered(2 * time.Millisecond)
	}
	for range 3 {
		a.forwarded(3 * time.Millisecond)
	}
	for kind, want := range map[string]uint64{"publish": 1, "delivery": 2, "forward": 3} {
		var m dto.Metric
		if err := a.m.latency.WithLabelValues(kind).(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("live %s latencies: %d, want %d", kind, got, want)
		}
	}
	if a.specDelivery.Count() != 2 || a.statusForward.Count() != 3 {
		t.Errorf("summary: %d deliveries, %d forwards; want 2 and 3", a.specDelivery.Count(), a.statusForward.Count())
	}
}
