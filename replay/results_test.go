package replay

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The schedule is kept while at most 1 % of sends are later than the
// bound, and the summary says which, with the numbers.
func TestScheduleSummary(t *testing.T) {
	if s := ScheduleVerdict(0, 0, time.Millisecond); s != nil {
		t.Errorf("nothing sent: %+v, want nil", s)
	}
	for _, c := range []struct {
		late     int // of 200 sends, later than the bound
		kept     bool
		fraction float64
		text     string
	}{
		{0, true, 0, "schedule kept: 200 of 200 sends (100.0%) left within 1ms"},
		{2, true, 0.01, "schedule kept: 198 of 200 sends (99.0%) left within 1ms"},
		{3, false, 0.015, "schedule NOT kept: 3 of 200 sends (1.5%) left more than 1ms late"},
	} {
		l := NewLatency()
		for i := range 200 {
			d := 50 * time.Microsecond
			if i < c.late {
				d = 30 * time.Millisecond
			}
			l.Record(d)
		}
		s := ScheduleVerdict(l.Count(), int64(c.late), time.Millisecond)
		if s.Kept != c.kept || s.Late != int64(c.late) || s.Sends != 200 || s.LateFraction != c.fraction || s.BoundUS != 1000 {
			t.Errorf("%d late of 200: %+v", c.late, s)
		}
		var out bytes.Buffer
		sum := &Summary{Schedule: s, SendLateness: l.Summary()}
		if err := sum.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), c.text) {
			t.Errorf("%d late of 200: summary\n%s\nwants %q", c.late, out.String(), c.text)
		}
	}
}
