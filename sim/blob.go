package sim

import (
	"encoding/json"
	"fmt"
	"sync"
	"unique"

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
	return blob{h: unique.Make(string(b)), set: true}
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
