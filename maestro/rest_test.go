package maestro

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeMaestroREST follows Maestro's REST contract (openapi.yaml): consumer
// create (201/409/400), paged lists, resource bundle get (200/404), Error
// objects, bearer auth when a token is configured.
type fakeMaestroREST struct {
	token string

	mu        sync.Mutex
	consumers map[string]Consumer
	bundles   map[string]ResourceBundle
}

func (f *fakeMaestroREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeAPIError(w, http.StatusUnauthorized, "maestro-401", "Request doesn't contain the 'Authorization' header")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == ConsumersPath && r.Method == http.MethodPost:
		var c Consumer
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Name == "" {
			writeAPIError(w, http.StatusBadRequest, "maestro-21", "consumer name is required")
			return
		}
		if _, ok := f.consumers[c.Name]; ok {
			writeAPIError(w, http.StatusConflict, "maestro-7", "This Consumer already exists")
			return
		}
		c.ID, c.Kind, c.Href = "id-"+c.Name, "Consumer", ConsumersPath+"/id-"+c.Name
		f.consumers[c.Name] = c
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(c)
	case r.URL.Path == ConsumersPath && r.Method == http.MethodGet:
		names := make([]string, 0, len(f.consumers))
		for n := range f.consumers {
			names = append(names, n)
		}
		sort.Strings(names)
		page, _, items := paginate(r, names)
		list := ConsumerList{Kind: "ConsumerList", Page: page, Size: len(items), Total: len(names)}
		for _, n := range items {
			list.Items = append(list.Items, f.consumers[n])
		}
		_ = json.NewEncoder(w).Encode(list)
	case strings.HasPrefix(r.URL.Path, ResourceBundlesPath+"/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(r.URL.Path, ResourceBundlesPath+"/")
		rb, ok := f.bundles[id]
		if !ok {
			writeAPIError(w, http.StatusNotFound, "maestro-5", fmt.Sprintf("Resource with id='%s' not found", id))
			return
		}
		_ = json.NewEncoder(w).Encode(rb)
	case r.URL.Path == ResourceBundlesPath && r.Method == http.MethodGet:
		ids := make([]string, 0, len(f.bundles))
		for id := range f.bundles {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		page, _, items := paginate(r, ids)
		list := ResourceBundleList{Kind: "ResourceBundleList", Page: page, Size: len(items), Total: len(ids)}
		for _, id := range items {
			list.Items = append(list.Items, f.bundles[id])
		}
		_ = json.NewEncoder(w).Encode(list)
	default:
		writeAPIError(w, http.StatusNotFound, "maestro-404", "no such path")
	}
}

func paginate(r *http.Request, all []string) (page, size int, items []string) {
	page, size = 1, 100
	if v, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		page = v
	}
	if v, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil {
		size = v
	}
	start := min((page-1)*size, len(all))
	return page, size, all[start:min(start+size, len(all))]
}

func writeAPIError(w http.ResponseWriter, status int, code, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"kind": "Error", "id": strings.TrimPrefix(code, "maestro-"),
		"code": code, "reason": reason, "operation_id": "op-1"})
}

func newFakeREST(t *testing.T, token string) (*fakeMaestroREST, *httptest.Server) {
	t.Helper()
	f := &fakeMaestroREST{token: token, consumers: map[string]Consumer{}, bundles: map[string]ResourceBundle{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestRESTConsumers(t *testing.T) {
	_, srv := newFakeREST(t, "s3cret")
	c, err := NewRESTClient(srv.URL+"/", nil, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created, err := c.CreateConsumer(ctx, "maestro-cluster-1")
	if err != nil || !created {
		t.Fatalf("first create: created=%v err=%v", created, err)
	}
	created, err = c.CreateConsumer(ctx, "maestro-cluster-1")
	if err != nil || created {
		t.Fatalf("second create: created=%v err=%v", created, err)
	}
	_, err = c.CreateConsumer(ctx, "")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "consumer name is required") {
		t.Errorf("empty name: err = %v", err)
	}
	// More consumers than one page, to exercise paging.
	for i := 2; i <= listPageSize+20; i++ {
		if _, err := c.CreateConsumer(ctx, fmt.Sprintf("maestro-cluster-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != listPageSize+20 {
		t.Errorf("listed %d consumers, want %d", len(all), listPageSize+20)
	}
	seen := map[string]bool{}
	for _, cons := range all {
		if seen[cons.Name] {
			t.Errorf("consumer %s listed twice", cons.Name)
		}
		seen[cons.Name] = true
	}
}

func TestRESTAuthFailureHidesToken(t *testing.T) {
	_, srv := newFakeREST(t, "right-token")
	c, err := NewRESTClient(srv.URL, nil, "wrong-token")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateConsumer(context.Background(), "c1")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Error("error message leaks the token")
	}
}

func TestRESTResourceBundles(t *testing.T) {
	f, srv := newFakeREST(t, "")
	f.bundles[goldenResourceID] = ResourceBundle{ID: goldenResourceID, Kind: "ResourceBundle", Name: goldenResourceID,
		ConsumerName: goldenCluster, Version: 2, Status: json.RawMessage(`{"conditions":[{"type":"Applied","status":"True"}]}`)}
	f.bundles["other"] = ResourceBundle{ID: "other", ConsumerName: goldenCluster, Version: 1}
	c, err := NewRESTClient(srv.URL, srv.Client(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rb, err := c.GetResourceBundle(ctx, goldenResourceID)
	if err != nil {
		t.Fatal(err)
	}
	if rb.ConsumerName != goldenCluster || rb.Version != 2 || !strings.Contains(string(rb.Status), "Applied") {
		t.Errorf("bundle %+v", rb)
	}
	_, err = c.GetResourceBundle(ctx, "missing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bundle: err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "Resource with id='missing' not found") {
		t.Errorf("error lacks the server's reason: %v", err)
	}
	page, err := c.ListResourceBundles(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 || len(page.Items) != 1 || page.Kind != "ResourceBundleList" {
		t.Errorf("page 1: %+v", page)
	}
	if page, err = c.ListResourceBundles(ctx, 2, 1); err != nil || len(page.Items) != 1 || page.Items[0].ID == "" {
		t.Errorf("page 2: %+v, %v", page, err)
	}
	if _, err := c.ListResourceBundles(ctx, 0, 10); err == nil {
		t.Error("page 0 accepted")
	}
}

func TestRESTBadAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == ConsumersPath {
			_, _ = w.Write([]byte("<html>not json"))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("upstream down"))
	}))
	defer srv.Close()
	c, err := NewRESTClient(srv.URL, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListConsumers(context.Background()); err == nil || !strings.Contains(err.Error(), "decode response") {
		t.Errorf("non-JSON list: err = %v", err)
	}
	if _, err := c.CreateConsumer(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "HTTP 502: upstream down") {
		t.Errorf("502: err = %v", err)
	}
}

// A bearer token is refused over http to another machine, where it would
// cross the network in clear text, and accepted over https or to loopback.
func TestNewRESTClientTokenNeedsHTTPS(t *testing.T) {
	const token = "tok-3f9a-secret"
	_, err := NewRESTClient("http://maestro.example:8000", nil, token)
	if err == nil || !strings.Contains(err.Error(), "clear text") || !strings.Contains(err.Error(), "maestro.example:8000") || strings.Contains(err.Error(), token) {
		t.Errorf("token over http to another host: %v", err)
	}
	for _, u := range []string{"https://maestro.example:8000", "http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"} {
		if _, err := NewRESTClient(u, nil, token); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	if _, err := NewRESTClient("http://maestro.example:8000", nil, ""); err != nil {
		t.Errorf("http without a token refused: %v", err)
	}
}

func TestNewRESTClientBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8000", "ftp://x", "http://", "http://[::1"} {
		if _, err := NewRESTClient(u, nil, ""); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}
