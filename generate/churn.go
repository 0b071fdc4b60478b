package generate

import (
	"math"
	"time"
)

// workRef is a work created by the churn phase: its cluster and its index
// there (from WorksPerCluster up).
type workRef struct{ cluster, index uint32 }

// ref returns a work's cluster and index within it. The works of the
// create phase are numbered cluster*WorksPerCluster + index; those the
// churn creates come after them, in the order they are created.
func (g *generator) ref(work uint32) (int, int) {
	if int64(work) < g.p.Works() {
		return int(work) / g.p.WorksPerCluster, int(work) % g.p.WorksPerCluster
	}
	r := g.churned[int64(work)-g.p.Works()]
	return int(r.cluster), int(r.index)
}

// liveWork is a work the churn may update or delete: it exists and its
// last spec has been answered.
type liveWork struct {
	work       uint32
	generation int32
	created    time.Duration
}

// churnOp kinds, drawn with equal chances: the population stays about
// the same size while it turns over.
const (
	churnCreate = iota
	churnUpdate
	churnDelete
)

// churn emits the steady-state phase: ChurnRate spec events a second for
// ChurnFor from start, each a create of a new work, an update of a live
// work or a delete of one, drawn from the seed. A work is live again only
// once the statuses answering its last spec are in the trace, so every
// work's events stay in order (a replay relies on it).
func (g *generator) churn(start, createStart time.Duration, emit func() error) error {
	// The statuses of the phases before all come before start: out with
	// them, so that only the churn's own answers make works live again.
	if err := g.statusesUntil(math.MaxInt64, emit, nil); err != nil {
		return err
	}
	var live []liveWork
	if !g.p.Delete {
		for k, work := range g.order {
			live = append(live, liveWork{work: work, generation: int32(traceResourceVersion + g.p.UpdatesPerWork),
				created: createStart + time.Duration(k)*g.period})
		}
	}
	// A work whose last spec is answered can be drawn again.
	revive := func(s pendingStatus) {
		if s.last && s.phase != PhaseDeleted {
			live = append(live, liveWork{work: s.work, generation: s.generation, created: s.created})
		}
	}
	g.churnCount = make([]uint32, g.p.Clusters)
	period := g.p.churnPeriod()
	for j := int64(0); j < g.p.churnOps(); j++ {
		offset := start + time.Duration(j)*period
		if err := g.statusesUntil(offset, emit, revive); err != nil {
			return err
		}
		// The choices of op j come from a source of its own.
		r := g.workRand(1<<62 | uint64(j))
		kind, pick, cluster := r.IntN(3), r.Uint64(), r.IntN(g.p.Clusters)
		if len(live) == 0 {
			kind = churnCreate
		}
		var err error
		switch kind {
		case churnCreate:
			work := uint32(g.p.Works() + int64(len(g.churned)))
			g.churned = append(g.churned, workRef{cluster: uint32(cluster), index: uint32(g.p.WorksPerCluster) + g.churnCount[cluster]})
			g.churnCount[cluster]++
			err = g.spec(work, offset)
		default:
			i := int(pick % uint64(len(live)))
			w := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			if kind == churnUpdate {
				err = g.changeTo(w.work, w.generation+1, false, offset, w.created)
			} else {
				err = g.changeTo(w.work, w.generation, true, offset, w.created)
			}
		}
		if err != nil {
			return err
		}
		if err := emit(); err != nil {
			return err
		}
	}
	return nil
}

// churnPeriod is the time between two churn events.
func (p *Params) churnPeriod() time.Duration {
	if p.Churn <= 0 {
		return 0
	}
	return time.Duration(math.Round(1e9 / p.Churn))
}

// churnOps is the number of churn events: ChurnFor at the churn rate.
func (p *Params) churnOps() int64 {
	if p.Churn <= 0 || p.ChurnFor <= 0 {
		return 0
	}
	return int64(p.ChurnFor / p.churnPeriod())
}
