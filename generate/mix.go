package generate

import (
	"fmt"
	"strconv"
	"strings"
)

// CustomWorkNameInfix names the works of a workload read from files:
// <cluster>-w-<i>, shorter than the guestbook's so that names built from
// {{.Work}} stay within Kubernetes' 63-character labels longer.
const CustomWorkNameInfix = "-w-"

// mixEntry is one workload of a trace.
type mixEntry struct {
	spec   WorkloadSpec
	custom *customWorkload // nil: the guestbook
	infix  string
	fixed  *Workload // the workload when no work differs from another
	upto   uint64    // cumulative weight: works hashed below it use this entry
}

// workloadMix spreads the works of a trace over its workloads by weight
// and builds the encoder of each work. A work's workload is a function of
// the seed and the work alone, so the mix, like everything else, is the
// same on every run.
type workloadMix struct {
	entries []mixEntry
	total   uint64

	sourceID string
	shape    StatusShape

	fixedEnc map[encKey]*encoder // workloads without placeholders
	workEnc  map[encKey]*encoder // rendered per work; bounded, rebuilt on a miss
}

// encKey names an encoder: the entry, the work (for rendered workloads
// only) and the generation its statuses report.
type encKey struct {
	entry      int
	work       uint32
	generation int32
}

// maxWorkEncoders bounds the encoders of rendered workloads kept for the
// statuses that follow their spec.
const maxWorkEncoders = 4096

// newWorkloadMix loads the workloads of p (the guestbook when none is
// given); a workload that cannot be read, rendered or parsed is an error
// naming its flag, file, document and line.
func newWorkloadMix(p *Params) (*workloadMix, error) {
	m := &workloadMix{
		sourceID: p.SourceID, shape: p.Status,
		fixedEnc: map[encKey]*encoder{}, workEnc: map[encKey]*encoder{},
	}
	specs := p.Workloads
	if len(specs) == 0 {
		specs = []WorkloadSpec{{Path: GuestbookWorkload, Weight: 1}}
	}
	cluster := p.clusterName(0)
	for _, s := range specs {
		e := mixEntry{spec: s}
		if s.Path == GuestbookWorkload {
			gb, err := Guestbook()
			if err != nil {
				return nil, err
			}
			e.infix, e.fixed = WorkNameInfix, gb
		} else {
			e.infix = CustomWorkNameInfix
			cw, err := loadWorkload(s.Path, WorkData{Cluster: cluster, Work: cluster + e.infix + "0", Index: 0})
			if err != nil {
				return nil, fmt.Errorf("--workload %s: %w", s, err)
			}
			e.custom, e.fixed = cw, cw.static
		}
		m.total += uint64(s.Weight)
		e.upto = m.total
		m.entries = append(m.entries, e)
	}
	return m, nil
}

// digest sums up the contents of the workloads read from files, for the
// manifest: the same flags over other files make another trace.
func (m *workloadMix) digest() string {
	var parts []string
	for _, e := range m.entries {
		if e.custom != nil {
			parts = append(parts, e.custom.digest)
		}
	}
	return strings.Join(parts, ",")
}

// pick returns the entry of a work.
func (m *workloadMix) pick(seed int64, work uint32) int {
	if len(m.entries) == 1 {
		return 0
	}
	h := splitmix64(uint64(seed)^0x5851f42d4c957f2d^splitmix64(uint64(work))) % m.total
	for i, e := range m.entries {
		if h < e.upto {
			return i
		}
	}
	return len(m.entries) - 1
}

// workName returns the name of work i of a cluster under an entry.
func (m *workloadMix) appendWorkName(dst []byte, entry int, cluster []byte, i int) []byte {
	dst = append(append(dst, cluster...), m.entries[entry].infix...)
	return strconv.AppendInt(dst, int64(i), 10)
}

// encoder returns the encoder of a work at a generation: its spec data is
// the bundle of the work's create (generation 1) or of its update
// generation-1, and its statuses report that generation. The work is
// named by its cluster, name and index; its WorkData is made only when
// its documents are rendered.
func (m *workloadMix) encoder(entry int, work uint32, cluster string, name []byte, index int, generation int32) (*encoder, error) {
	e := &m.entries[entry]
	update := int(generation - traceResourceVersion)
	if e.fixed != nil {
		k := encKey{entry: entry, generation: generation}
		if enc := m.fixedEnc[k]; enc != nil {
			return enc, nil
		}
		enc, err := m.newEncoder(e.fixed, update, generation)
		if err != nil {
			return nil, err
		}
		m.fixedEnc[k] = enc
		return enc, nil
	}
	k := encKey{entry: entry, work: work, generation: generation}
	if enc := m.workEnc[k]; enc != nil {
		return enc, nil
	}
	w, err := e.custom.forWork(WorkData{Cluster: cluster, Work: string(name), Index: index, Update: update})
	if err != nil {
		return nil, fmt.Errorf("--workload %s: %w", e.spec, err)
	}
	enc, err := m.newEncoder(w, update, generation)
	if err != nil {
		return nil, fmt.Errorf("--workload %s: %w", e.spec, err)
	}
	if len(m.workEnc) >= maxWorkEncoders {
		clear(m.workEnc)
	}
	m.workEnc[k] = enc
	return enc, nil
}

// newEncoder builds the encoder of a workload at its u-th update (0: the
// create).
func (m *workloadMix) newEncoder(w *Workload, u int, generation int32) (*encoder, error) {
	if u > 0 {
		var err error
		if w, err = w.updated(u); err != nil {
			return nil, err
		}
	}
	return newEncoder(w, m.sourceID, m.shape, generation)
}
