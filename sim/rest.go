package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/util/validation"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/types"

	"github.com/cereplay/cereplay/maestro"
)

// The REST API is the part of Maestro's openapi/openapi.yaml that a replay
// needs: consumers (create, list, get) and resource bundles (list, get,
// delete), with Maestro's paging (page from 1, size default 100) and its
// error objects. Paths and types are package maestro's.

// Paging limits of Maestro's list endpoints.
const (
	defaultPageSize = 100
	maxPageSize     = 65500
)

func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+maestro.ConsumersPath, s.postConsumer)
	mux.HandleFunc("GET "+maestro.ConsumersPath, s.listConsumers)
	mux.HandleFunc("GET "+maestro.ConsumersPath+"/{id}", s.getConsumer)
	mux.HandleFunc("GET "+maestro.ResourceBundlesPath, s.listBundles)
	mux.HandleFunc("GET "+maestro.ResourceBundlesPath+"/{id}", s.getBundle)
	mux.HandleFunc("DELETE "+maestro.ResourceBundlesPath+"/{id}", s.deleteBundle)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFoundCode, fmt.Sprintf("Unrecognized path %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Maestro's error codes (rh-trex pkg/errors): the code string is
// "maestro-<n>" and the href /api/maestro/v1/errors/<n>.
const (
	errConflictCode   = 6
	errNotFoundCode   = 7
	errValidationCode = 8
	errBadRequestCode = 21
)

func writeError(w http.ResponseWriter, httpStatus, code int, reason string) {
	n := strconv.Itoa(code)
	writeJSON(w, httpStatus, maestro.ErrorObject{
		ID: n, Kind: "Error", Href: maestro.ErrorsPath + "/" + n,
		Code: "maestro-" + n, Reason: reason,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func presentConsumer(c consumer) maestro.Consumer {
	return maestro.Consumer{
		ID: c.ID, Kind: "Consumer", Href: maestro.ConsumersPath + "/" + c.ID,
		Name: c.Name, Labels: c.Labels, CreatedAt: &c.CreatedAt, UpdatedAt: &c.UpdatedAt,
	}
}

// validateConsumerName applies Maestro's rule: a consumer name is a
// namespace name, an RFC 1123 label. The error quotes at most the first
// maxEchoed bytes of the name: a client's mistake is not sent back whole.
func validateConsumerName(name string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("consumer.name: Invalid value: %s: %s", quoteShort(name), strings.Join(msgs, "; "))
	}
	return nil
}

// maxEchoed is how much of a rejected value an error message quotes.
const maxEchoed = 80

// quoteShort quotes s, or its first maxEchoed bytes and its length.
func quoteShort(s string) string {
	if len(s) <= maxEchoed {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(strings.ToValidUTF8(s[:maxEchoed], "")), len(s))
}

func (s *Server) postConsumer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, errBadRequestCode, fmt.Sprintf("Unable to read request body: %v", err))
		return
	}
	name := body.Name
	if name == "" {
		// Maestro names an unnamed consumer after its id.
		name = uuid.NewString()
	}
	if err := validateConsumerName(name); err != nil {
		writeError(w, http.StatusBadRequest, errValidationCode, err.Error())
		return
	}
	c, err := s.store.createConsumer(name, body.Labels)
	if errors.Is(err, errConsumerExists) {
		writeError(w, http.StatusConflict, errConflictCode, "This Consumer already exists")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, 9, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, presentConsumer(c))
}

func (s *Server) getConsumer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.store.consumer(id)
	if !ok {
		writeError(w, http.StatusNotFound, errNotFoundCode, fmt.Sprintf("Consumer with id='%s' not found", id))
		return
	}
	writeJSON(w, http.StatusOK, presentConsumer(c))
}

func (s *Server) listConsumers(w http.ResponseWriter, r *http.Request) {
	page, err := parsePaging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequestCode, err.Error())
		return
	}
	match, err := parseSearch(r.URL.Query().Get("search"), map[string]bool{"id": true, "name": true})
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequestCode, err.Error())
		return
	}
	var items []maestro.Consumer
	for _, c := range s.store.listConsumers() {
		if match(map[string]string{"id": c.ID, "name": c.Name}) {
			items = append(items, presentConsumer(c))
		}
	}
	writeJSON(w, http.StatusOK, pageOf("ConsumerList", page, items))
}

// presentBundle is Maestro's PresentResourceBundle: the spec's metadata
// (with timestamps), manifests, configs and delete option, and the status
// as {ObservedVersion, SequenceID, conditions, resourceStatus}.
func presentBundle(r *resource) (maestro.ResourceBundle, error) {
	created, updated := r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	b := maestro.ResourceBundle{
		ID: r.ID, Kind: "ResourceBundle", Href: maestro.ResourceBundlesPath + "/" + r.ID,
		Name: r.ID, ConsumerName: r.Consumer, Version: r.Version,
		CreatedAt: &created, UpdatedAt: &updated,
	}
	if r.deleting() {
		t := r.DeletedAt.UTC()
		b.DeletedAt = &t
	}
	if sp := r.Spec; sp != nil {
		if sp.hasMeta {
			meta, err := r.metadataFor(true)
			if err != nil {
				return b, err
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(meta), &m); err != nil {
				return b, err
			}
			if b.Metadata, err = rawObject(m); err != nil {
				return b, err
			}
		}
		if sp.data.set {
			var bundle struct {
				Manifests       []any          `json:"manifests"`
				DeleteOption    map[string]any `json:"deleteOption"`
				ManifestConfigs []any          `json:"manifestConfigs"`
			}
			if err := json.Unmarshal([]byte(sp.data.String()), &bundle); err != nil {
				return b, fmt.Errorf("decode stored manifest bundle: %w", err)
			}
			var err error
			if b.Manifests, err = rawItems(bundle.Manifests); err != nil {
				return b, err
			}
			if b.DeleteOption, err = rawObject(bundle.DeleteOption); err != nil {
				return b, err
			}
			if b.ManifestConfigs, err = rawItems(bundle.ManifestConfigs); err != nil {
				return b, err
			}
		}
	}
	if st := r.Status; st != nil {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(st.data.String()), &m); err != nil {
			return b, fmt.Errorf("decode stored status: %w", err)
		}
		delete(m, "manifestBundle")
		if v, err := cetypes.ToInteger(st.context.GetExtensions()[types.ExtensionResourceVersion]); err == nil {
			m["ObservedVersion"] = v
		}
		m["SequenceID"] = st.SequenceID
		var err error
		if b.Status, err = rawObject(m); err != nil {
			return b, err
		}
	}
	return b, nil
}

// rawObject encodes a decoded JSON object, keys sorted, for a raw field
// of maestro.ResourceBundle; an empty object is left out, as Maestro
// leaves out an empty map.
func rawObject(m map[string]any) (json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode bundle field: %w", err)
	}
	return b, nil
}

// rawItems encodes each item of a decoded JSON array; an empty array is
// left out.
func rawItems(items []any) ([]json.RawMessage, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("encode bundle item %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func (s *Server) getBundle(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, ok := s.store.get(id)
	if !ok {
		writeError(w, http.StatusNotFound, errNotFoundCode, fmt.Sprintf("Resource with id='%s' not found", id))
		return
	}
	b, err := presentBundle(&res)
	if err != nil {
		writeError(w, http.StatusInternalServerError, 9, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// deleteBundle marks a bundle as deleting, as a source's delete_request
// does, and sends the delete to the agent.
func (s *Server) deleteBundle(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.store.get(id); !ok {
		writeError(w, http.StatusNotFound, errNotFoundCode, fmt.Sprintf("Resource with id='%s' not found", id))
		return
	}
	if _, changed := s.store.markDeleting(id); changed {
		s.specQueue.Push(specItem{id: id, eventType: maestro.TypeSpecDelete, accepted: time.Now()})
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listBundles(w http.ResponseWriter, r *http.Request) {
	page, err := parsePaging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequestCode, err.Error())
		return
	}
	match, err := parseSearch(r.URL.Query().Get("search"), map[string]bool{"id": true, "name": true, "consumer_name": true, "source": true})
	if err != nil {
		writeError(w, http.StatusBadRequest, errBadRequestCode, err.Error())
		return
	}
	all := s.store.listAll(func(res *resource) bool {
		return match(map[string]string{"id": res.ID, "name": res.ID, "consumer_name": res.Consumer, "source": res.Source})
	})
	lo, hi := page.window(len(all))
	items := make([]maestro.ResourceBundle, 0, hi-lo)
	for i := lo; i < hi; i++ {
		b, err := presentBundle(&all[i])
		if err != nil {
			writeError(w, http.StatusInternalServerError, 9, err.Error())
			return
		}
		items = append(items, b)
	}
	writeJSON(w, http.StatusOK, maestro.ResourceBundleList{Kind: "ResourceBundleList", Page: page.page, Size: len(items), Total: len(all), Items: items})
}

// paging is a requested page: number from 1 and size.
type paging struct{ page, size int }

func parsePaging(r *http.Request) (paging, error) {
	p := paging{page: 1, size: defaultPageSize}
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, fmt.Errorf("page %s: want a whole number from 1", quoteShort(v))
		}
		p.page = n
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("size %s: want a whole number", quoteShort(v))
		}
		if n < 0 || n > maxPageSize {
			n = maxPageSize
		}
		p.size = n
	}
	return p, nil
}

// window is the [lo, hi) slice of n items on this page.
func (p paging) window(n int) (lo, hi int) {
	lo = (p.page - 1) * p.size
	if p.size == 0 || lo >= n || lo < 0 {
		return n, n
	}
	hi = lo + p.size
	if hi > n {
		hi = n
	}
	return lo, hi
}

func pageOf[T any](kind string, p paging, all []T) maestro.List[T] {
	lo, hi := p.window(len(all))
	items := all[lo:hi]
	if items == nil {
		items = []T{}
	}
	return maestro.List[T]{Kind: kind, Page: p.page, Size: len(items), Total: len(all), Items: items}
}

// searchTerm matches one condition of Maestro's SQL-like search parameter
// that sim understands: field = 'value' or field in ('a', 'b').
var (
	searchEq = regexp.MustCompile(`^\s*([a-z_]+)\s*=\s*'([^']*)'\s*$`)
	searchIn = regexp.MustCompile(`^\s*([a-z_]+)\s+in\s*\(\s*('[^']*'(?:\s*,\s*'[^']*')*)\s*\)\s*$`)
	andSplit = regexp.MustCompile(`(?i)\s+and\s+`)
)

// parseSearch turns a search expression (conditions joined by "and") into
// a predicate over a row's fields. Anything else is refused with a clear
// message rather than silently ignored.
func parseSearch(expr string, fields map[string]bool) (func(map[string]string) bool, error) {
	if strings.TrimSpace(expr) == "" {
		return func(map[string]string) bool { return true }, nil
	}
	type cond struct {
		field  string
		values map[string]bool
	}
	var conds []cond
	for _, part := range andSplit.Split(expr, -1) {
		var c cond
		if m := searchEq.FindStringSubmatch(part); m != nil {
			c = cond{m[1], map[string]bool{m[2]: true}}
		} else if m := searchIn.FindStringSubmatch(part); m != nil {
			c = cond{m[1], map[string]bool{}}
			for _, v := range strings.Split(m[2], ",") {
				c.values[strings.Trim(strings.TrimSpace(v), "'")] = true
			}
		} else {
			return nil, fmt.Errorf("search %s: sim understands only field = 'value' and field in ('a', 'b'), joined by and", quoteShort(expr))
		}
		if !fields[c.field] {
			return nil, fmt.Errorf("search %s: unknown field %s", quoteShort(expr), quoteShort(c.field))
		}
		conds = append(conds, c)
	}
	return func(row map[string]string) bool {
		for _, c := range conds {
			if !c.values[row[c.field]] {
				return false
			}
		}
		return true
	}, nil
}
