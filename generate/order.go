package generate

import "fmt"

// Order is the order in which the source creates the works.
type Order uint8

const (
	// OrderScaleTest is the maestro-addon scale test's order: several
	// creators run side by side, each walking its own contiguous range of
	// clusters and creating all works of a cluster before the next one.
	// Their creates interleave one by one.
	OrderScaleTest Order = 1
	// OrderRoundRobin creates work i of every cluster before work i+1 of
	// any, spreading the load over all clusters evenly.
	OrderRoundRobin Order = 2
	// OrderCluster creates all works of cluster 1, then of cluster 2, ...
	OrderCluster Order = 3
)

// String returns the flag value naming the order.
func (o Order) String() string {
	switch o {
	case OrderScaleTest:
		return "scale-test"
	case OrderRoundRobin:
		return "round-robin"
	case OrderCluster:
		return "cluster"
	}
	return fmt.Sprintf("order(%d)", uint8(o))
}

// ParseOrder parses "scale-test", "round-robin" or "cluster".
func ParseOrder(s string) (Order, error) {
	for o := OrderScaleTest; o <= OrderCluster; o++ {
		if o.String() == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("generate: unknown order %q (want scale-test, round-robin or cluster)", s)
}

// creationOrder returns the work ids (cluster*worksPerCluster + work) in
// the order they are created. creators is used by OrderScaleTest only.
func creationOrder(o Order, clusters, worksPerCluster, creators int) ([]uint32, error) {
	n := clusters * worksPerCluster
	ids := make([]uint32, 0, n)
	switch o {
	case OrderCluster:
		for id := 0; id < n; id++ {
			ids = append(ids, uint32(id))
		}
	case OrderRoundRobin:
		for w := 0; w < worksPerCluster; w++ {
			for c := 0; c < clusters; c++ {
				ids = append(ids, uint32(c*worksPerCluster+w))
			}
		}
	case OrderScaleTest:
		creators = min(creators, clusters)
		if creators < 1 {
			return nil, fmt.Errorf("generate: scale-test order needs at least one creator, got %d", creators)
		}
		// Creator k walks clusters [start[k], start[k+1]); the first
		// clusters%creators creators take one cluster more.
		start := make([]int, creators+1)
		for k := 0; k < creators; k++ {
			size := clusters / creators
			if k < clusters%creators {
				size++
			}
			start[k+1] = start[k] + size
		}
		for step := 0; len(ids) < n; step++ {
			for k := 0; k < creators; k++ {
				if id := start[k]*worksPerCluster + step; id < start[k+1]*worksPerCluster {
					ids = append(ids, uint32(id))
				}
			}
		}
	default:
		return nil, fmt.Errorf("generate: unknown order %d", o)
	}
	return ids, nil
}
