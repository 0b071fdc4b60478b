package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/maestro"
)

func postConsumer(t *testing.T, base, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(base+maestro.ConsumersPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST consumers: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func TestRESTConsumers(t *testing.T) {
	srv := startSim(t)
	base := srv.RESTURL()
	code, c := postConsumer(t, base, `{"name":"cluster-1","labels":{"env":"test"}}`)
	if code != http.StatusCreated || c["kind"] != "Consumer" || c["name"] != "cluster-1" || c["href"] != maestro.ConsumersPath+"/"+c["id"].(string) {
		t.Fatalf("create: %d %v", code, c)
	}
	code, e := postConsumer(t, base, `{"name":"cluster-1"}`)
	if code != http.StatusConflict || e["kind"] != "Error" || e["code"] != "maestro-6" || e["reason"] != "This Consumer already exists" {
		t.Fatalf("duplicate: %d %v", code, e)
	}
	for _, bad := range []string{`{"name":"Not_A_Label"}`, `{"name":`, `[]`} {
		if code, e := postConsumer(t, base, bad); code != http.StatusBadRequest || e["kind"] != "Error" {
			t.Errorf("POST %s: %d %v, want 400", bad, code, e)
		}
	}
	var got maestro.Consumer
	if code := getJSON(t, base+maestro.ConsumersPath+"/"+c["id"].(string), &got); code != http.StatusOK || got.Name != "cluster-1" || got.Labels["env"] != "test" {
		t.Fatalf("get by id: %d %+v", code, got)
	}
	if code := getJSON(t, base+maestro.ConsumersPath+"/nope", nil); code != http.StatusNotFound {
		t.Fatalf("get unknown: %d", code)
	}
	var list maestro.ConsumerList
	getJSON(t, base+maestro.ConsumersPath+"?search="+url.QueryEscape("name = 'cluster-1'"), &list)
	if list.Total != 1 || list.Items[0].Name != "cluster-1" {
		t.Fatalf("search: %+v", list)
	}
	if code := getJSON(t, base+maestro.ConsumersPath+"?search="+url.QueryEscape("labels like '%x'"), nil); code != http.StatusBadRequest {
		t.Fatalf("unsupported search: %d, want 400", code)
	}
	if code := getJSON(t, base+maestro.ConsumersPath+"?page=0", nil); code != http.StatusBadRequest {
		t.Fatalf("page 0: %d, want 400", code)
	}
}

// TestRESTClient runs the maestro package's REST client against sim: what
// a replay uses to create consumers and read bundles.
func TestRESTClient(t *testing.T) {
	srv := startSim(t)
	ctx := context.Background()
	client, err := maestro.NewRESTClient(srv.RESTURL(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if created, err := client.CreateConsumer(ctx, goldenCluster); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if created, err := client.CreateConsumer(ctx, goldenCluster); err != nil || created {
		t.Fatalf("create again: %v %v, want false, nil (409)", created, err)
	}
	const n = 1201 // more than two of the client's pages of 500
	for i := 2; i <= n; i++ {
		if err := srv.CreateConsumer(fmt.Sprintf("maestro-cluster-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := client.ListConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range all {
		seen[c.Name] = true
	}
	if len(all) != n || len(seen) != n {
		t.Fatalf("listed %d consumers (%d distinct), want %d", len(all), len(seen), n)
	}

	if _, err := client.GetResourceBundle(ctx, "dda8b541-0bb7-5b43-b48c-ffff60a10ea1"); !errors.Is(err, maestro.ErrNotFound) {
		t.Fatalf("missing bundle: %v, want ErrNotFound", err)
	}
	source := dial(t, srv.SourceAddr())
	mustPublish(t, source, golden(t, "01-source-spec-create_request"))
	for i := range 4 {
		mustPublish(t, source, specEvent(t, maestro.TypeSpecCreate, fmt.Sprintf("maestro-cluster-%d", i+2), fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i), 0))
	}
	rb, err := client.GetResourceBundle(ctx, "dda8b541-0bb7-5b43-b48c-ffff60a10ea1")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(rb.Metadata, &meta); err != nil || meta["name"] != rb.ID || meta["creationTimestamp"] == nil {
		t.Fatalf("metadata %s (%v)", rb.Metadata, err)
	}
	if len(rb.Manifests) != 7 || len(rb.ManifestConfigs) != 7 || rb.ConsumerName != goldenCluster || rb.Version != 1 || rb.Status != nil {
		t.Fatalf("bundle: %d manifests, %d configs, consumer %q, version %d, status %s", len(rb.Manifests), len(rb.ManifestConfigs), rb.ConsumerName, rb.Version, rb.Status)
	}
	page, err := client.ListResourceBundles(ctx, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if page.Kind != "ResourceBundleList" || page.Page != 2 || page.Size != 2 || page.Total != 5 || len(page.Items) != 2 ||
		page.Items[0].ID != "00000000-0000-0000-0000-000000000001" {
		t.Fatalf("page 2 of 2: %+v", page)
	}
	last, err := client.ListResourceBundles(ctx, 3, 2)
	if err != nil || last.Size != 1 || len(last.Items) != 1 {
		t.Fatalf("last page: %+v %v", last, err)
	}
	var filtered maestro.List[bundleView]
	getJSON(t, srv.RESTURL()+maestro.ResourceBundlesPath+"?search="+url.QueryEscape("consumer_name in ('maestro-cluster-2', 'maestro-cluster-3')"), &filtered)
	if filtered.Total != 2 {
		t.Fatalf("search by consumer: total %d, want 2", filtered.Total)
	}
}

// TestRESTDeleteBundle deletes through REST: the agent gets the delete.
func TestRESTDeleteBundle(t *testing.T) {
	e := newRawEnv(t)
	mustPublish(t, e.source, golden(t, "01-source-spec-create_request"))
	e.agentA.next(t)
	req, _ := http.NewRequest(http.MethodDelete, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/dda8b541-0bb7-5b43-b48c-ffff60a10ea1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if got := e.agentA.next(t); got.GetType() != maestro.TypeSpecDelete {
		t.Fatalf("agent got %s, want delete_request", got.GetType())
	}
}

func TestHealthAndMetrics(t *testing.T) {
	srv := startSim(t)
	resp, err := http.Get("http://" + srv.HealthAddr() + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthcheck: %d", resp.StatusCode)
	}
	if err := srv.CreateConsumer(goldenCluster); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, dial(t, srv.SourceAddr()), golden(t, "01-source-spec-create_request"))
	resp, err = http.Get("http://" + srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"process_cpu_seconds_total", "process_resident_memory_bytes", "sim_resources 1", "sim_consumers 1",
		`sim_grpc_requests_total{code="OK",method="Publish",port="source"} 1`,
		`sim_events_received_total{port="source",type="spec.create_request"} 1`,
		`sim_subscribers{port="broker"} 0`, "sim_spec_delivery_seconds", "sim_status_forward_seconds",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// bundleView decodes a resource bundle with its status as a map, for the
// tests that look into the status.
type bundleView struct {
	maestro.ResourceBundle
	Status map[string]any `json:"status"`
}

// TestRESTStalledRequestTimesOut: a client that sends a request's headers
// and stalls in its body is cut off after HTTPReadTimeout, not held open.
func TestRESTStalledRequestTimesOut(t *testing.T) {
	srv := startSim(t, func(c *Config) { c.HTTPReadTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.RESTURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", maestro.ConsumersPath)
	// The bound is for a server that never gives up; the timeout is 200ms.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the connection of a stalled request was still open: %v (read %q)", err, b)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Errorf("answer to a stalled request: %q", b)
	}
}

// TestRESTDoesNotEchoLongNames: a 1 MB invalid consumer name is refused
// with a short message that quotes only its start.
func TestRESTDoesNotEchoLongNames(t *testing.T) {
	srv := startSim(t)
	name := strings.Repeat("X", 1_000_000)
	resp, err := http.Post(srv.RESTURL()+maestro.ConsumersPath, "application/json", strings.NewReader(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || len(b) > 1024 || !strings.Contains(string(b), "(1000000 bytes)") {
		t.Fatalf("POST of a 1 MB name: %d, %d bytes: %.300s", resp.StatusCode, len(b), b)
	}
}
