package pace_test

import (
	"fmt"
	"time"

	"github.com/cereplay/cereplay/pace"
)

// A schedule is a pure function of the event's position and recorded
// offset, measured from one start instant.
func ExamplePacer() {
	pacers := []struct {
		name string
		p    pace.Pacer
	}{
		{"recorded offsets", pace.SpeedPacer{Speed: 1}},
		{"twice as fast", pace.SpeedPacer{Speed: 2}},
		{"2,000 per second", pace.RatePacer{Rate: 2000}},
		{"as fast as possible", pace.MaxPacer{}},
	}
	offsets := []time.Duration{0, 50 * time.Millisecond, 120 * time.Millisecond}
	for _, x := range pacers {
		fmt.Printf("%-20s", x.name)
		for n, off := range offsets {
			fmt.Printf(" %v", x.p.Due(uint64(n), off))
		}
		fmt.Println()
	}
	// Output:
	// recorded offsets     0s 50ms 120ms
	// twice as fast        0s 25ms 60ms
	// 2,000 per second     0s 500µs 1ms
	// as fast as possible  0s 0s 0s
}
