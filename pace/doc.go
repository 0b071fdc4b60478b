// Package pace decides when each send of a replay is due and waits for it.
//
// A Pacer turns a record's position and recorded offset into a due time
// after one start instant T0 (recorded speed, a fixed rate, or at once),
// and says everything else that depends on the timing mode (reply delays,
// whether there is a schedule to keep). A Clock waits for due times:
// PreciseClock sleeps in the kernel and spins the last stretch, FakeClock
// jumps, so schedules are testable without sleeping. A Thread gives the
// goroutine that releases sends a real-time thread of its own for long
// waits; there PreciseClock.Await lets it wait for other events too (a
// replay's status replies), its sleep cut short by a Bell when one falls
// due sooner.
package pace
