package replay

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

// multiplier plays every cluster of a trace K times (--clusters-multiplier):
// copy 0 is the trace as it is, copy c >= 1 the same records under derived
// names and ids, so a trace of N clusters drives K×N agents without a
// bigger trace. Record i of the trace becomes records i×K+c of the replay,
// which is what the outcomes are numbered by; a trigger moves with it.
type multiplier struct {
	k  int
	ns uuid.UUID // the namespace of derived resource ids

	buf  []byte // the rewritten record's data, until the next copy
	copy format.Record
}

// multiplierNamespace is the UUIDv5 namespace of derived resource ids.
var multiplierNamespace = uuid.NewSHA1(uuid.NameSpaceOID, []byte("cereplay-clusters-multiplier"))

func newMultiplier(k int) *multiplier {
	if k <= 1 {
		return nil
	}
	return &multiplier{k: k, ns: multiplierNamespace}
}

// cluster returns the name of copy c of a cluster: the name itself for
// copy 0, name-x<c+1> for the others (the second copy is -x2).
func (m *multiplier) cluster(name string, c int) string {
	if c == 0 || name == "" {
		return name
	}
	return name + "-x" + strconv.Itoa(c+1)
}

// rid returns the resource id of copy c: UUIDv5(ns, original + "/" + c).
func (m *multiplier) rid(rid string, c int) string {
	if c == 0 || rid == "" {
		return rid
	}
	return uuid.NewSHA1(m.ns, []byte(rid+"/"+strconv.Itoa(c))).String()
}

// clusters returns every copy of every cluster, each cluster's copies
// together.
func (m *multiplier) clusters(names []string) []string {
	if m == nil {
		return names
	}
	out := make([]string, 0, len(names)*m.k)
	for _, n := range names {
		for c := 0; c < m.k; c++ {
			out = append(out, m.cluster(n, c))
		}
	}
	return out
}

// manifest returns the trace's manifest as the replay sees it: K times the
// records, every copy of every consumer, the counts K times.
func (m *multiplier) manifest(man *format.Manifest) *format.Manifest {
	if m == nil {
		return man
	}
	c := *man
	c.Records *= int64(m.k)
	c.Consumers = m.clusters(man.Consumers)
	c.CountsByFlow = make(map[string]int64, len(man.CountsByFlow))
	for k, v := range man.CountsByFlow {
		c.CountsByFlow[k] = v * int64(m.k)
	}
	c.CountsByType = make(map[string]int64, len(man.CountsByType))
	for k, v := range man.CountsByType {
		c.CountsByType[k] = v * int64(m.k)
	}
	return &c
}

// check refuses a multiplier whose derived names Maestro would not take.
func (m *multiplier) check(names []string) error {
	if m == nil {
		return nil
	}
	for _, n := range names {
		if d := m.cluster(n, m.k-1); len(d) > 63 {
			return fmt.Errorf("replay: --clusters-multiplier %d: cluster %s becomes %s, longer than the 63 characters of a consumer name", m.k, n, d)
		}
	}
	return nil
}

// record returns copy c of rec (for copy 0 the record itself, its trigger
// renumbered). The copy is valid until the next call.
func (m *multiplier) record(rec *format.Record, c int) (*format.Record, error) {
	cp := &m.copy
	*cp = *rec
	if rec.HasTrigger {
		cp.Trigger = rec.Trigger*uint64(m.k) + uint64(c)
	}
	if c == 0 {
		return cp, nil
	}
	cp.ResourceID = m.rid(rec.ResourceID, c)
	switch rec.Flow {
	case format.FlowAgentSubscribe:
		cluster := m.cluster(rec.Actor, c)
		cp.Actor = cluster
		req := &pbv1.SubscriptionRequest{}
		if err := proto.Unmarshal(rec.Data, req); err != nil {
			return nil, fmt.Errorf("replay: agent subscription of %s: %w", rec.Actor, err)
		}
		req.ClusterName = m.cluster(req.ClusterName, c)
		var err error
		if m.buf, err = (proto.MarshalOptions{Deterministic: true}).MarshalAppend(m.buf[:0], req); err != nil {
			return nil, fmt.Errorf("replay: agent subscription of %s: %w", cluster, err)
		}
		cp.Data = m.buf
		return cp, nil
	case format.FlowSourceSubscribe:
		return cp, nil
	case format.FlowAgentToServer, format.FlowServerToAgent:
		cp.Actor = m.cluster(rec.Actor, c)
	}
	if len(rec.Data) == 0 {
		return cp, nil
	}
	data, err := m.event(m.buf[:0], rec.Data, rec.ResourceID, c)
	if err != nil {
		return nil, fmt.Errorf("replay: copy %d of record: %w", c, err)
	}
	m.buf, cp.Data = data, data
	return cp, nil
}

// event rewrites the attributes that name the cluster or the resource:
// ce-clustername, ce-resourceid and the metadata that holds them (names,
// namespace, uid). The data is left as it is.
func (m *multiplier) event(dst, ce []byte, rid string, c int) ([]byte, error) {
	var set []wire.Attr
	str := func(key, v string) wire.Attr { return wire.Attr{Key: key, Kind: wire.AttrString, Str: []byte(v)} }
	var v [2][]byte // the cluster, the metadata
	if err := wire.StringAttrs(ce, []string{maestro.AttrClusterName, maestro.AttrMetadata}, v[:]); err != nil {
		return nil, err
	}
	cluster := string(v[0])
	if cluster != "" {
		set = append(set, str(maestro.AttrClusterName, m.cluster(cluster, c)))
	}
	if rid != "" {
		set = append(set, str(maestro.AttrResourceID, m.rid(rid, c)))
	}
	if md := string(v[1]); md != "" {
		if rid != "" {
			md = strings.ReplaceAll(md, rid, m.rid(rid, c))
		}
		if cluster != "" {
			md = strings.ReplaceAll(md, `"`+cluster, `"`+m.cluster(cluster, c))
		}
		set = append(set, str(maestro.AttrMetadata, md))
	}
	if len(set) == 0 {
		return append(dst, ce...), nil
	}
	return wire.PatchAttrs(dst, ce, set)
}

// rewrites names what the multiplier changes, for run.json.
func (m *multiplier) rewrites() []Rewrite {
	if m == nil {
		return nil
	}
	k := strconv.Itoa(m.k)
	return []Rewrite{
		{Field: "record index", Flows: "all",
			Rule: "trace record i plays as records i×" + k + "+c, c = 0.." + strconv.Itoa(m.k-1) + " (the outcomes are numbered so; a trigger t becomes t×" + k + "+c)"},
		{Field: maestro.AttrClusterName, Flows: "all, copies c >= 1",
			Rule: "<cluster>-x<c+1>; the same in the agent's subscription, the record's actor and the metadata's names and namespace that start with the cluster"},
		{Field: maestro.AttrResourceID, Flows: "all, copies c >= 1",
			Rule: fmt.Sprintf("UUIDv5(%s, original id + \"/\" + c), also in the metadata; the data (and an agent's CloudEvent source) is left as it is", multiplierNamespace)},
	}
}
