package record

import (
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

// linker gives records the trigger that makes a recording replay
// reactively (see the package doc): it remembers, per resource, the last
// spec a source published and the last delivery to each cluster, and, per
// sequence id, the statuses agents published. It sees records in trace
// order, in the writer's goroutine.
type linker struct {
	specs      map[string]seen // resource id → source>server Publish
	deliveries map[string]seen // cluster "/" resource id → server>agent
	statuses   map[string]seen // sequence id → agent>server status

	linked, unlinked int64 // agent statuses with and without a trigger
}

// seen is a record a later one may answer.
type seen struct {
	index   uint64
	offset  time.Duration
	version int64
	hasVer  bool
}

// linkHorizon is how long a record can wait for its answer: entries older
// than this are pruned at checkpoints, which bounds the linker's memory on
// long recordings. A status that answers an older delivery is unlinked.
const linkHorizon = time.Hour

func newLinker() linker {
	return linker{specs: map[string]seen{}, deliveries: map[string]seen{}, statuses: map[string]seen{}}
}

// link sets r's trigger, if it answers a record seen before, and remembers
// r, the record at index, if a later record may answer it.
func (l *linker) link(r *format.Record, index uint64, k maestro.Keys, ok bool) {
	if !ok || r.Flow.Subscribe() {
		return
	}
	s := seen{index: index, offset: r.Offset, version: k.ResourceVersion, hasVer: k.HasResourceVersion}
	switch r.Flow {
	case format.FlowSourceToServer:
		if maestro.IsSpec(k.Type) && k.ResourceID != "" {
			l.specs[k.ResourceID] = s
		}
	case format.FlowServerToAgent:
		if !maestro.IsSpec(k.Type) || k.ResourceID == "" {
			return
		}
		if k.Type != maestro.TypeSpecResyncResponse {
			if spec, found := l.specs[k.ResourceID]; found {
				trigger(r, spec)
			}
		}
		l.deliveries[r.Actor+"/"+k.ResourceID] = s
	case format.FlowAgentToServer:
		if k.Type != maestro.TypeStatusUpdate || k.ResourceID == "" {
			return
		}
		d, found := l.deliveries[r.Actor+"/"+k.ResourceID]
		if found && (!k.HasResourceVersion || !d.hasVer || d.version == k.ResourceVersion) {
			trigger(r, d)
			l.linked++
		} else {
			l.unlinked++
		}
		if k.SequenceID != "" {
			l.statuses[k.SequenceID] = s
		}
	case format.FlowServerToSource:
		if st, found := l.statuses[k.SequenceID]; found && k.SequenceID != "" {
			trigger(r, st)
		}
	}
}

func trigger(r *format.Record, to seen) {
	r.HasTrigger, r.Trigger, r.Delay = true, to.index, r.Offset-to.offset
}

// prune forgets records older than before.
func (l *linker) prune(before time.Duration) {
	for _, m := range []map[string]seen{l.specs, l.deliveries, l.statuses} {
		for k, s := range m {
			if s.offset < before {
				delete(m, k)
			}
		}
	}
}
