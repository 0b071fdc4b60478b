package sim

import (
	"encoding/json"
	"fmt"
	"sync"
	"unique"
	"unsafe"

	workpayload "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"
)

// blob is an immutable byte string interned by content. The 150,000 specs
// of a scale run are mostly byte-identical, and so are many statuses, so
// they share one copy; the runtime frees a copy when no resource holds it.
// blobs compare by content in O(1).
type blob struct {
	h   unique.Handle[string]
	set bool
}

func newBlob(b []byte) blob {
	if len(b) == 0 {
		return blob{}
	}
	// unique.Make clones a string it stores, so it may look at b in place;
	// b is not changed during the call. This saves a copy of every event.
	return blob{h: unique.Make(unsafe.String(&b[0], len(b))), set: true}
}

func (b blob) String() string {
	if !b.set {
		return ""
	}
	return b.h.Value()
}

// Bytes returns a copy the caller may keep.
func (b blob) Bytes() []byte {
	if !b.set {
		return nil
	}
	return []byte(b.h.Value())
}

func (b blob) Len() int { return len(b.String()) }

// view returns the bytes without copying them. The caller must only read
// them: they are the interned string's memory. Spec deliveries hand them
// to the SDK, which only reads event data.
func (b blob) view() []byte {
	if !b.set {
		return nil
	}
	s := b.h.Value()
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// bundleCache maps a spec's sorted data to the ManifestBundle marshalled in
// struct order, the form Maestro embeds in status forwarded to sources.
// Building it takes a typed decode and encode; with identical specs one
// build serves them all. It is bounded: when full it starts over.
type bundleCache struct {
	mu sync.Mutex
	m  map[blob]blob
}

const bundleCacheSize = 4096

func newBundleCache() *bundleCache { return &bundleCache{m: make(map[blob]blob)} }

func (c *bundleCache) get(data blob) (blob, error) {
	c.mu.Lock()
	v, ok := c.m[data]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := structOrderBundle(data)
	if err != nil {
		return blob{}, err
	}
	c.mu.Lock()
	if len(c.m) >= bundleCacheSize {
		clear(c.m)
	}
	c.m[data] = v
	c.mu.Unlock()
	return v, nil
}

func structOrderBundle(data blob) (blob, error) {
	var b workpayload.ManifestBundle
	if data.set {
		if err := json.Unmarshal([]byte(data.String()), &b); err != nil {
			return blob{}, fmt.Errorf("decode stored spec as a manifest bundle: %w", err)
		}
	}
	out, err := json.Marshal(&b)
	if err != nil {
		return blob{}, fmt.Errorf("encode manifest bundle: %w", err)
	}
	return newBlob(out), nil
}

// canonCache remembers, for spec data seen before, its canonical form (or
// why it was refused), so that the identical specs of a scale run are
// parsed once. Bounded like bundleCache.
type canonCache struct {
	mu sync.Mutex
	m  map[blob]canonResult
}

type canonResult struct {
	sorted blob
	err    error
}

func newCanonCache() *canonCache { return &canonCache{m: make(map[blob]canonResult)} }

// get returns the canonical JSON of raw spec data after validating its
// manifests; errors wrap errInvalidManifest or describe bad JSON.
func (c *canonCache) get(raw []byte) (blob, error) {
	key := newBlob(raw)
	c.mu.Lock()
	r, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return r.sorted, r.err
	}
	sorted, doc, err := canonicalJSON(raw)
	if err != nil {
		r.err = fmt.Errorf("failed to convert cloudevent to resource payload: data is not JSON: %v", err)
	} else if err := validateBundle(doc); err != nil {
		r.err = fmt.Errorf("%w, %v", errInvalidManifest, err)
	} else {
		r.sorted = newBlob(sorted)
	}
	c.mu.Lock()
	if len(c.m) >= bundleCacheSize {
		clear(c.m)
	}
	c.m[key] = r
	c.mu.Unlock()
	return r.sorted, r.err
}

// statusCache remembers which status data was already checked (JSON
// object, Deleted condition), keyed by its interned bytes.
type statusCache struct {
	mu sync.Mutex
	m  map[blob]statusCheck
}

type statusCheck struct {
	deleted bool
	err     error
}

func newStatusCache() *statusCache { return &statusCache{m: make(map[blob]statusCheck)} }

func (c *statusCache) check(data blob) (bool, error) {
	c.mu.Lock()
	r, ok := c.m[data]
	c.mu.Unlock()
	if ok {
		return r.deleted, r.err
	}
	r.deleted, r.err = statusDeleted([]byte(data.String()))
	c.mu.Lock()
	if len(c.m) >= bundleCacheSize {
		clear(c.m)
	}
	c.m[data] = r
	c.mu.Unlock()
	return r.deleted, r.err
}
