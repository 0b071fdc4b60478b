package record_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/internal/testnet"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
	"github.com/cereplay/cereplay/record"
)

// rawClient calls a CloudEventService port with raw bytes.
type rawClient struct{ cc *grpc.ClientConn }

func dialRaw(t *testing.T, addr string) rawClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return rawClient{cc}
}

// publishRequest wraps event bytes as a PublishRequest (field 1).
func publishRequest(ev []byte) []byte {
	return append(wire.AppendPublishHead(nil, len(ev)), ev...)
}

func (c rawClient) publish(ctx context.Context, req []byte) error {
	var resp transport.RawMsg
	return c.cc.Invoke(ctx, transport.MethodPublish, &transport.RawMsg{B: req}, &resp, transport.RawCall)
}

// subscribe opens a stream and returns it with its header.
func (c rawClient) subscribe(ctx context.Context, t *testing.T, req proto.Message) (grpc.ClientStream, metadata.MD, error) {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.cc.NewStream(ctx, transport.SubscribeDesc, transport.MethodSubscribe, transport.RawCall)
	if err != nil {
		return nil, nil, err
	}
	if err := st.SendMsg(&transport.RawMsg{B: b}); err != nil {
		return nil, nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, nil, err
	}
	md, err := st.Header()
	return st, md, err
}

// TestBytesPassThrough: what the clients send and receive through the
// proxy is recorded byte for byte; the subscription-id header reaches an
// idle stream (no heartbeats) before any message; a message that is not
// a CloudEvent gets the same answer as without the proxy, is recorded raw
// and counted undecodable.
func TestBytesPassThrough(t *testing.T) {
	const cluster, source = "cluster-b", "raw-source"
	srv := startSim(t, 0)
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	rec, out := startRecorder(t, srv, func(c *record.Config) { c.MetricsListen = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agent, src := dialRaw(t, rec.BrokerAddr()), dialRaw(t, rec.SourceAddr())

	st, md, err := agent.subscribe(ctx, t, maestro.AgentSubscription(cluster))
	if err != nil || len(md.Get(maestro.SubscriptionIDHeader)) != 1 {
		t.Fatalf("idle agent stream through the proxy: header %v, %v", md, err)
	}
	if _, md, err := src.subscribe(ctx, t, maestro.SourceSubscription(source)); err != nil || len(md.Get(maestro.SubscriptionIDHeader)) != 1 {
		t.Fatalf("source stream: header %v, %v", md, err)
	}
	ev, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, source, sdkclient.ConfigMapWork(cluster, "w1"), maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := maestro.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.publish(ctx, publishRequest(sent)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var got transport.RawMsg
	if err := st.RecvMsg(&got); err != nil {
		t.Fatalf("delivery: %v", err)
	}

	// Not CloudEvents: the same code and message as from sim itself.
	direct := dialRaw(t, srv.SourceAddr())
	for _, bad := range [][]byte{publishRequest([]byte{0xff, 0xff}), {0x0a, 0x05, 0x01}} {
		want := direct.publish(ctx, bad)
		err := src.publish(ctx, bad)
		if status.Code(err) != status.Code(want) || status.Convert(err).Message() != status.Convert(want).Message() {
			t.Errorf("bad message %x: through the proxy %v, directly %v", bad, err, want)
		}
	}
	metrics := scrape(t, "http://"+rec.MetricsAddr()+"/metrics")
	for _, want := range []string{
		`cereplay_record_messages_total{flow="source>server"} 3`,
		`cereplay_record_undecodable_total{flow="source>server"} 2`,
		`cereplay_record_messages_total{flow="server>agent"} 1`,
		`cereplay_record_streams{port="broker"} 1`,
		`cereplay_record_recording 1`,
		`cereplay_record_added_latency_seconds_count{port="source"} 3`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(metrics, `cereplay_record_errors_total{code=`) {
		t.Error("metrics lack the refused calls' codes")
	}
	sum, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Undecodable != 2 {
		t.Errorf("undecodable %d, want 2", sum.Undecodable)
	}
	_, recs := readTrace(t, out)
	var specs, deliveries [][]byte
	for _, r := range recs {
		switch {
		case r.Type != format.TypeEvent:
		case r.Flow == format.FlowSourceToServer:
			specs = append(specs, r.Data)
		case r.Flow == format.FlowServerToAgent:
			deliveries = append(deliveries, r.Data)
		}
	}
	if len(specs) != 3 || !bytes.Equal(specs[0], sent) {
		t.Errorf("source>server records: %d, first equal to the sent bytes: %v", len(specs), len(specs) > 0 && bytes.Equal(specs[0], sent))
	}
	if len(specs) == 3 && (!bytes.Equal(specs[1], []byte{0xff, 0xff}) || !bytes.Equal(specs[2], []byte{0x0a, 0x05, 0x01})) {
		t.Errorf("undecodable messages not recorded raw: %x %x", specs[1], specs[2])
	}
	if len(deliveries) != 1 || !bytes.Equal(deliveries[0], got.B) {
		t.Errorf("server>agent records: %d, equal to the received bytes: %v", len(deliveries), len(deliveries) == 1 && bytes.Equal(deliveries[0], got.B))
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUpstreamDown: with Maestro unreachable, clients get Unavailable on
// both RPCs, and the Publish is recorded with a failed outcome.
func TestUpstreamDown(t *testing.T) {
	down := testnet.DeadAddr(t)
	out := filepath.Join(t.TempDir(), "rec")
	rec, err := record.Start(context.Background(), record.Config{Out: out,
		SourceListen: "127.0.0.1:0", SourceUpstream: down, BrokerListen: "127.0.0.1:0", BrokerUpstream: down})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spec, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, "s", sdkclient.ConfigMapWork("c", "w"), maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := maestro.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := dialRaw(t, rec.SourceAddr()).publish(ctx, publishRequest(ev)); status.Code(err) != codes.Unavailable {
		t.Errorf("publish with the upstream down: %v, want Unavailable", err)
	}
	st, _, err := dialRaw(t, rec.BrokerAddr()).subscribe(ctx, t, maestro.AgentSubscription("c"))
	if err == nil {
		var m transport.RawMsg
		err = st.RecvMsg(&m)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("subscribe with the upstream down: %v, want Unavailable", err)
	}
	sum, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors["Unavailable"] != 2 {
		t.Errorf("errors %v, want 2 Unavailable", sum.Errors)
	}
	_, recs := readTrace(t, out)
	var failed int
	for _, r := range recs {
		if r.Type == format.TypeOutcome && r.Outcome.Status == format.OutcomeFailed && r.Outcome.Code == uint32(codes.Unavailable) {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d failed outcomes, want the Publish's", failed)
	}
}

// TestOutNotEmpty: a folder with anything in it is refused and left as it
// was.
func TestOutNotEmpty(t *testing.T) {
	out := t.TempDir()
	keep := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := record.Start(context.Background(), record.Config{Out: out,
		SourceListen: "127.0.0.1:0", SourceUpstream: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty --out: %v", err)
	}
	if b, _ := os.ReadFile(keep); string(b) != "mine" {
		t.Fatal("the folder's file changed")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 1 {
		t.Fatalf("%d entries in the folder after the refusal", len(ents))
	}
}

// TestSharedUpstreamConns: with UpstreamConns, clients share the upstream
// connections and traffic flows as with one per client.
func TestSharedUpstreamConns(t *testing.T) {
	srv := startSim(t, 0)
	for _, c := range []string{"shared-1", "shared-2"} {
		if err := srv.CreateConsumer(c); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := startRecorder(t, srv, func(c *record.Config) { c.UpstreamConns = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src := dialRaw(t, rec.SourceAddr())
	for _, c := range []string{"shared-1", "shared-2"} {
		st, _, err := dialRaw(t, rec.BrokerAddr()).subscribe(ctx, t, maestro.AgentSubscription(c))
		if err != nil {
			t.Fatal(err)
		}
		publishSpecs(t, src, c, 0, 1)
		var m transport.RawMsg
		if err := st.RecvMsg(&m); err != nil {
			t.Fatalf("delivery to %s over a shared upstream: %v", c, err)
		}
	}
	if _, err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}
