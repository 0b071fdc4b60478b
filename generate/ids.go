package generate

import (
	"crypto/sha1"
	"hash"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bwmarrin/snowflake"
	"github.com/google/uuid"

	"github.com/cereplay/cereplay/maestro"
)

// workRand returns the random source of one work. Every random choice of a
// work (event ids, delays) comes from it, so a work's events depend only
// on the seed and the work, never on the order or the goroutine that
// builds them.
func workRand(seed int64, work uint64) *rand.Rand {
	return rand.New(rand.NewPCG(workSeed(seed, work)))
}

// workSeed is the PCG seed of a work's random source.
func workSeed(seed int64, work uint64) (uint64, uint64) {
	s := uint64(seed)
	return splitmix64(s ^ splitmix64(work)), splitmix64(s + 0x632be59bd9b4e019 ^ work)
}

// workRand reseeds the generator's one random source for a work: the same
// stream as workRand(seed, work), without two allocations per work.
func (g *generator) workRand(work uint64) *rand.Rand {
	g.pcg.Seed(workSeed(g.p.Seed, work))
	return g.rng
}

// splitmix64 scrambles a key into a well-mixed 64-bit seed (Steele et al.).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newUUID draws a random (version 4, RFC 4122 variant) UUID, like the
// uuid.New() the SDK's event builder calls, from a seeded source.
func newUUID(r *rand.Rand) [16]byte {
	var u [16]byte
	a, b := r.Uint64(), r.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (56 - 8*i))
		u[8+i] = byte(b >> (56 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

const hexDigits = "0123456789abcdef"

// appendUUID appends the canonical 36-character form of u.
func appendUUID(dst []byte, u [16]byte) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return dst
}

// sequenceIDs mints the node-1 snowflakes of status events from their
// nominal times, so the same trace always carries the same ids. Statuses
// are written in time order; within one millisecond the step counts up,
// so the ids strictly increase through the trace, as Maestro requires.
type sequenceIDs struct {
	lastMillis int64
	step       int64
}

// maxStep is the last step a snowflake millisecond holds (12 bits).
const maxStep = 1<<12 - 1

// next returns the sequence id for a status at t. A full millisecond
// borrows the next one, which keeps ids increasing.
func (s *sequenceIDs) next(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli() - snowflake.Epoch
	switch {
	case ms > s.lastMillis:
		s.lastMillis, s.step = ms, 0
	case s.step < maxStep:
		s.step++
	default:
		s.lastMillis, s.step = s.lastMillis+1, 0
	}
	id := s.lastMillis<<22 | maestro.SequenceNode<<12 | s.step
	return strconv.AppendInt(dst, id, 10)
}

// resourceIDs derives resource ids as maestro.ResourceID does (the SDK
// source client's UUIDv5 of "<source>-<group resource>-<consumer>-<work>"),
// reusing one hash state and buffer: it runs once per work, and the
// allocating path was a fifth of the generator's own time.
type resourceIDs struct {
	h    hash.Hash
	name []byte
	sum  []byte
}

func newResourceIDs() *resourceIDs { return &resourceIDs{h: sha1.New()} }

// appendID appends the 36-character resource id of a work to dst.
func (r *resourceIDs) appendID(dst []byte, sourceID string, cluster, work []byte) []byte {
	r.name = append(append(append(append(append(append(r.name[:0], sourceID...), '-'),
		maestro.ManifestWorkGroupResource...), '-'), cluster...), '-')
	r.name = append(r.name, work...)
	r.h.Reset()
	r.h.Write(uuid.NameSpaceOID[:])
	r.h.Write(r.name)
	r.sum = r.h.Sum(r.sum[:0])
	var u [16]byte
	copy(u[:], r.sum)
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return appendUUID(dst, u)
}
