package replay

import "fmt"

// Shard selects the part of a trace one replayer plays when several share
// it: clusters are split by a stable hash of their name, so every shard gets
// whole agents (their specs and their statuses).
type Shard struct {
	Index, Count int // 0 <= Index < Count; Count 0 or 1 means everything
}

// ParseShard parses "i/n" (0-based i).
func ParseShard(s string) (Shard, error) {
	var sh Shard
	if s == "" {
		return Shard{}, nil
	}
	if _, err := fmt.Sscanf(s, "%d/%d", &sh.Index, &sh.Count); err != nil {
		return Shard{}, fmt.Errorf("shard %q: want INDEX/COUNT such as 0/4", s)
	}
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return Shard{}, fmt.Errorf("shard %q: want 0 <= INDEX < COUNT", s)
	}
	return sh, nil
}

// Owns reports whether this shard plays the given cluster (or source: every
// shard plays every source, for its own clusters).
func (s Shard) Owns(cluster string) bool {
	if s.Count <= 1 {
		return true
	}
	return int(fnv32(cluster)%uint32(s.Count)) == s.Index
}

// String returns "i/n", or "" when there is no sharding.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
