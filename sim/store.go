package sim

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
)

// consumer is a registered cluster (Maestro's consumers table).
type consumer struct {
	ID        string
	Name      string
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// resource is one resource bundle (Maestro's resources row). Its spec and
// status are immutable values replaced as a whole, so a copy of the struct
// is a consistent snapshot that can be used without the store lock.
type resource struct {
	ID        string
	Consumer  string
	Source    string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt time.Time // zero unless a delete was requested (soft delete)
	Spec      *spec
	Status    *statusRecord // nil until the first stored status
	seq       uint64        // creation order, for stable REST listing
}

func (r *resource) deleting() bool { return !r.DeletedAt.IsZero() }

// Errors of the store; the gRPC and REST layers turn them into Maestro's
// messages.
var (
	errConsumerExists   = errors.New("consumer already exists")
	errUnknownConsumer  = errors.New("unknown consumer")
	errResourceExists   = errors.New("resource already exists")
	errResourceNotFound = errors.New("resource not found")
	errResourceDeleting = errors.New("resource is under deletion")
	errStaleVersion     = errors.New("resource version is not the latest")
)

// store holds sim's state in memory: consumers and resources with an index
// per consumer. One mutex guards it; every operation is a few map accesses,
// all JSON work is done by callers outside the lock.
type store struct {
	mu         sync.RWMutex
	consumers  map[string]*consumer // by name
	consumerID map[string]*consumer
	resources  map[string]*resource
	byConsumer map[string]map[string]*resource
	nextSeq    uint64
	now        func() time.Time
}

func newStore() *store {
	return &store{
		consumers:  make(map[string]*consumer),
		consumerID: make(map[string]*consumer),
		resources:  make(map[string]*resource),
		byConsumer: make(map[string]map[string]*resource),
		now:        time.Now,
	}
}

func (s *store) createConsumer(name string, labels map[string]string) (consumer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.consumers[name]; ok {
		return consumer{}, fmt.Errorf("%w: %s", errConsumerExists, name)
	}
	now := s.now().UTC()
	c := &consumer{ID: uuid.NewString(), Name: name, Labels: labels, CreatedAt: now, UpdatedAt: now}
	s.consumers[name] = c
	s.consumerID[c.ID] = c
	return *c, nil
}

// consumer finds a consumer by id or, failing that, by name.
func (s *store) consumer(idOrName string) (consumer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.consumerID[idOrName]; ok {
		return *c, true
	}
	if c, ok := s.consumers[idOrName]; ok {
		return *c, true
	}
	return consumer{}, false
}

func (s *store) consumerExists(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.consumers[name]
	return ok
}

// listConsumers returns every consumer in creation order.
func (s *store) listConsumers() []consumer {
	s.mu.RLock()
	out := make([]consumer, 0, len(s.consumers))
	for _, c := range s.consumers {
		out = append(out, *c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s *store) consumerCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.consumers)
}

func (s *store) resourceCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.resources)
}

// create inserts a new resource: its consumer must exist (Maestro's foreign
// key) and its id must be new (primary key). A zero version becomes 1.
func (s *store) create(r resource) (resource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.consumers[r.Consumer]; !ok {
		return resource{}, fmt.Errorf("%w: %s", errUnknownConsumer, r.Consumer)
	}
	if _, ok := s.resources[r.ID]; ok {
		return resource{}, fmt.Errorf("%w: %s", errResourceExists, r.ID)
	}
	if r.Version == 0 {
		r.Version = 1
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	r.UpdatedAt = r.CreatedAt
	s.nextSeq++
	r.seq = s.nextSeq
	stored := r
	s.resources[r.ID] = &stored
	idx := s.byConsumer[r.Consumer]
	if idx == nil {
		idx = make(map[string]*resource)
		s.byConsumer[r.Consumer] = idx
	}
	idx[r.ID] = &stored
	return stored, nil
}

// get returns a snapshot of a resource.
func (s *store) get(id string) (resource, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.resources[id]
	if !ok {
		return resource{}, false
	}
	return *r, true
}

// update replaces the spec of a resource and bumps its version. version 0
// means "the current one"; any other must equal the current version. A
// spec equal to the stored one changes nothing (changed is false).
func (s *store) update(id string, version int64, sp *spec) (r resource, changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok := s.resources[id]
	if !ok {
		return resource{}, false, fmt.Errorf("%w: %s", errResourceNotFound, id)
	}
	if found.deleting() {
		return resource{}, false, fmt.Errorf("%w: %s", errResourceDeleting, id)
	}
	if version == 0 {
		version = found.Version
	}
	if version != found.Version {
		return *found, false, fmt.Errorf("%w: the latest version: %d", errStaleVersion, found.Version)
	}
	if found.Spec.sameAs(sp) {
		return *found, false, nil
	}
	found.Version++
	found.Spec = sp
	found.UpdatedAt = s.now()
	return *found, true, nil
}

// markDeleting soft-deletes a resource. An unknown or already deleting
// resource is not an error and changes nothing (Maestro's MarkAsDeleting is
// idempotent).
func (s *store) markDeleting(id string) (resource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok := s.resources[id]
	if !ok || found.deleting() {
		return resource{}, false
	}
	now := s.now()
	found.DeletedAt = now
	found.UpdatedAt = now
	return *found, true
}

// remove hard-deletes a resource (after the agent reported Deleted).
func (s *store) remove(id string) (resource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok := s.resources[id]
	if !ok {
		return resource{}, false
	}
	delete(s.resources, id)
	if idx := s.byConsumer[found.Consumer]; idx != nil {
		delete(idx, id)
		if len(idx) == 0 {
			delete(s.byConsumer, found.Consumer)
		}
	}
	return *found, true
}

// statusOutcome says what updateStatus did with a status event.
type statusOutcome int

const (
	statusStored statusOutcome = iota
	statusUnknownResource
	statusStaleVersion
	statusUnchanged
	statusOlderSequence
)

func (o statusOutcome) String() string {
	switch o {
	case statusStored:
		return "stored"
	case statusUnknownResource:
		return "unknown_resource"
	case statusStaleVersion:
		return "stale_version"
	case statusUnchanged:
		return "unchanged"
	default:
		return "older_sequence"
	}
}

// updateStatus stores st when it is for the current version and its
// sequence id is newer than the stored one, the rules of Maestro's
// UpdateStatus. It returns the resource as stored afterwards.
func (s *store) updateStatus(id string, version int64, st *statusRecord) (resource, statusOutcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, ok := s.resources[id]
	if !ok {
		return resource{}, statusUnknownResource, nil
	}
	if found.Version != version {
		return *found, statusStaleVersion, nil
	}
	old := found.Status
	if old != nil && old.sameAs(st) {
		return *found, statusUnchanged, nil
	}
	oldSeq := ""
	if old != nil {
		oldSeq = old.SequenceID
	}
	newer, err := sequenceNewer(st.SequenceID, oldSeq)
	if err != nil {
		return *found, 0, err
	}
	if !newer {
		return *found, statusOlderSequence, nil
	}
	found.Status = st
	found.UpdatedAt = s.now()
	return *found, statusStored, nil
}

// listByConsumer returns snapshots of all resources of a consumer,
// including those being deleted (Maestro's unscoped FindByConsumerName).
func (s *store) listByConsumer(name string) []resource {
	s.mu.RLock()
	idx := s.byConsumer[name]
	out := make([]resource, 0, len(idx))
	for _, r := range idx {
		out = append(out, *r)
	}
	s.mu.RUnlock()
	sortBySeq(out)
	return out
}

// listBySource returns snapshots of all resources of a source.
func (s *store) listBySource(source string) []resource {
	s.mu.RLock()
	var out []resource
	for _, r := range s.resources {
		if r.Source == source {
			out = append(out, *r)
		}
	}
	s.mu.RUnlock()
	sortBySeq(out)
	return out
}

// listAll returns snapshots of every resource matching keep (nil keeps
// all), in creation order.
func (s *store) listAll(keep func(*resource) bool) []resource {
	s.mu.RLock()
	out := make([]resource, 0, len(s.resources))
	for _, r := range s.resources {
		if keep == nil || keep(r) {
			out = append(out, *r)
		}
	}
	s.mu.RUnlock()
	sortBySeq(out)
	return out
}

func sortBySeq(rs []resource) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].seq < rs[j].seq })
}
