package sim

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
)

// The raw tests speak protobuf to sim directly, with the golden events of
// the protocol examples as templates, and assert what PROTOCOL.md §16
// records a real Maestro doing.

const (
	goldenCluster = "maestro-cluster-1"
	goldenSource  = "maestro"
)

// rawEnv is a sim with two consumers, an agent stream per consumer and a
// source stream, all raw gRPC.
type rawEnv struct {
	srv            *Server
	source, broker pbv1.CloudEventServiceClient
	agentA, agentB *stream
	sourceStream   *stream
	seq            *maestro.SequenceIDs
}

func newRawEnv(t *testing.T) *rawEnv {
	t.Helper()
	e := &rawEnv{srv: startSim(t), seq: maestro.NewSequenceIDs()}
	for _, c := range []string{goldenCluster, "maestro-cluster-2"} {
		if err := e.srv.CreateConsumer(c); err != nil {
			t.Fatal(err)
		}
	}
	e.source = dial(t, e.srv.SourceAddr())
	e.broker = dial(t, e.srv.BrokerAddr())
	e.agentA = subscribe(t, e.broker, maestro.AgentSubscription(goldenCluster))
	e.agentB = subscribe(t, e.broker, maestro.AgentSubscription("maestro-cluster-2"))
	e.sourceStream = subscribe(t, e.source, maestro.SourceSubscription(goldenSource))
	eventually(t, "streams registered", func() bool {
		return e.srv.agentSubscribed(goldenCluster) && e.srv.agentSubscribed("maestro-cluster-2") &&
			len(e.srv.sources.of(goldenSource)) == 1
	})
	return e
}

// specEvent is golden 01 (a source's guestbook create) turned into an
// event of the given type for resource id at version rv, with a new id.
func specEvent(t *testing.T, eventType, cluster, id string, rv int64) *pbv1.CloudEvent {
	t.Helper()
	ev := proto.Clone(golden(t, "01-source-spec-create_request")).(*pbv1.CloudEvent)
	ev.Id = uuid.NewString()
	ev.Type = eventType
	maestro.SetStringAttr(ev, maestro.AttrResourceID, id)
	maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
	maestro.SetResourceVersion(ev, rv)
	return ev
}

// statusEvent is golden 03rb (a real agent's status) for resource id at
// version rv with a fresh sequence id.
func (e *rawEnv) statusEvent(t *testing.T, cluster, id string, rv int64) *pbv1.CloudEvent {
	t.Helper()
	ev := proto.Clone(golden(t, "03rb-agent-status-update_request-realistic-available")).(*pbv1.CloudEvent)
	ev.Id = uuid.NewString()
	maestro.SetStringAttr(ev, maestro.AttrResourceID, id)
	maestro.SetStringAttr(ev, maestro.AttrClusterName, cluster)
	maestro.SetResourceVersion(ev, rv)
	maestro.SetSequenceID(ev, e.seq.Next())
	return ev
}

// create stores work id for cluster at version 1, as a source's create
// does, and takes the agent's copy off its stream.
func (e *rawEnv) create(t *testing.T, agent *stream, cluster, id string) {
	t.Helper()
	mustPublish(t, e.source, specEvent(t, maestro.TypeSpecCreate, cluster, id, 0))
	if got := agent.next(t); got.GetType() != maestro.TypeSpecCreate {
		t.Fatalf("agent got %s, want the create", got.GetType())
	}
}

// update moves work id to its next version and takes the agent's copy off
// its stream.
func (e *rawEnv) update(t *testing.T, agent *stream, cluster, id string) {
	t.Helper()
	mustPublish(t, e.source, specEvent(t, maestro.TypeSpecUpdate, cluster, id, 0))
	if got := agent.next(t); got.GetType() != maestro.TypeSpecUpdate {
		t.Fatalf("agent got %s, want the update", got.GetType())
	}
}

// report stores a status of work id at version rv, as its agent does,
// and takes the forwarded copy off the source stream.
func (e *rawEnv) report(t *testing.T, cluster, id string, rv int64) *pbv1.CloudEvent {
	t.Helper()
	st := e.statusEvent(t, cluster, id, rv)
	mustPublish(t, e.broker, st)
	if got := e.sourceStream.next(t); maestro.StringAttr(got, maestro.AttrSequenceID) != maestro.StringAttr(st, maestro.AttrSequenceID) {
		t.Fatal("the status was not forwarded to the source")
	}
	return st
}

func publish(c pbv1.CloudEventServiceClient, ev *pbv1.CloudEvent) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Publish(ctx, &pbv1.PublishRequest{Event: ev})
	return err
}

func mustPublish(t *testing.T, c pbv1.CloudEventServiceClient, ev *pbv1.CloudEvent) {
	t.Helper()
	if err := publish(c, ev); err != nil {
		t.Fatalf("publish %s: %v", ev.GetType(), err)
	}
}

// wantCode asserts a gRPC status code and a message fragment.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
	}
}

func intAttr(ev *pbv1.CloudEvent, key string) (int32, bool) {
	v, ok := ev.GetAttributes()[key].GetAttr().(*pbv1.CloudEventAttributeValue_CeInteger)
	if !ok {
		return 0, false
	}
	return v.CeInteger, true
}

// withoutVolatile returns a copy of ev whose attributes that legitimately
// differ between runs (metadata timestamps, times) are replaced.
func withoutVolatile(ev *pbv1.CloudEvent, dropKeys ...string) *pbv1.CloudEvent {
	c := proto.Clone(ev).(*pbv1.CloudEvent)
	for _, k := range dropKeys {
		delete(c.Attributes, k)
	}
	return c
}

// TestSpecCreateMatchesGolden sends golden 01 as is and checks that the
// agent receives golden 02, the event Maestro sent, byte for byte except
// the creation timestamp in metadata (the time sim stored it).
func TestSpecCreateMatchesGolden(t *testing.T) {
	e := newRawEnv(t)
	in := golden(t, "01-source-spec-create_request")
	mustPublish(t, e.source, in)
	got := e.agentA.next(t)
	want := golden(t, "02-broker-to-agent-spec-create_request")
	if !proto.Equal(withoutVolatile(got, maestro.AttrMetadata), withoutVolatile(want, maestro.AttrMetadata)) {
		t.Fatalf("agent event differs from golden 02:\n got %v\nwant %v", withoutVolatile(got, maestro.AttrMetadata, "binary_data"), withoutVolatile(want, maestro.AttrMetadata))
	}
	created := time.Now().UTC().Format(time.RFC3339)[:15] // to the minute's tens: a loose check
	gotMeta := maestro.StringAttr(got, maestro.AttrMetadata)
	wantMeta := strings.Replace(maestro.StringAttr(want, maestro.AttrMetadata), "2024-12-20T08:30:00Z", "", 1)
	if i := strings.Index(gotMeta, `"creationTimestamp":"`); i < 0 || !strings.HasPrefix(gotMeta[i+21:], created) {
		t.Fatalf("metadata %s has no current creationTimestamp", gotMeta)
	} else if stripped := gotMeta[:i+21] + gotMeta[i+21+20:]; stripped != wantMeta {
		t.Fatalf("metadata\n got %s\nwant %s", stripped, wantMeta)
	}
	if !bytes.Equal(got.GetBinaryData(), want.GetBinaryData()) {
		t.Fatal("spec data is not golden 02's sorted-key data")
	}
	e.agentB.none(t, 50*time.Millisecond) // z: only the consumer's own stream gets it
}

// TestStatusForwardMatchesGolden stores golden 01, then sends golden 03 (the
// maestro-addon simulator status) with a fresh sequence id, and checks the
// source receives golden 04: the agent's event with the spec's metadata and
// manifestBundle added to the data.
func TestStatusForwardMatchesGolden(t *testing.T) {
	for _, tc := range []struct{ status, forwarded string }{
		{"03-agent-status-update_request", "04-server-to-source-status-update_request"},
		{"03rb-agent-status-update_request-realistic-available", "04r-server-to-source-status-update_request-realistic"},
	} {
		t.Run(tc.status, func(t *testing.T) {
			e := newRawEnv(t)
			mustPublish(t, e.source, golden(t, "01-source-spec-create_request"))
			e.agentA.next(t)
			st := proto.Clone(golden(t, tc.status)).(*pbv1.CloudEvent)
			maestro.SetResourceVersion(st, 1)
			seq := e.seq.Next()
			maestro.SetSequenceID(st, seq)
			mustPublish(t, e.broker, st)
			got := e.sourceStream.next(t)
			want := golden(t, tc.forwarded)
			if !bytes.Equal(got.GetBinaryData(), want.GetBinaryData()) {
				t.Fatalf("forwarded data (%d bytes) differs from %s (%d bytes)", len(got.GetBinaryData()), tc.forwarded, len(want.GetBinaryData()))
			}
			if got.GetType() != maestro.TypeStatusUpdate || got.GetSource() != st.GetSource() || got.GetId() != st.GetId() ||
				maestro.StringAttr(got, maestro.AttrSequenceID) != seq ||
				maestro.StringAttr(got, maestro.AttrOriginalSource) != maestro.BrokerSource {
				t.Fatalf("forwarded envelope: type %s source %s id %s seq %s", got.GetType(), got.GetSource(), got.GetId(), maestro.StringAttr(got, maestro.AttrSequenceID))
			}
			if rv, ok := intAttr(got, maestro.AttrResourceVersion); !ok || rv != 1 {
				t.Fatalf("forwarded resourceversion %v %v, want ce_integer 1", rv, ok)
			}
			// metadata is the spec's (golden 04's), not the agent's.
			gotMeta := maestro.StringAttr(got, maestro.AttrMetadata)
			if !strings.Contains(gotMeta, `"name":"dda8b541-0bb7-5b43-b48c-ffff60a10ea1"`) || strings.Contains(gotMeta, "finalizers") ||
				!strings.Contains(gotMeta, `"resourceVersion":"0"`) {
				t.Fatalf("forwarded metadata is not the spec's: %s", gotMeta)
			}
			for _, k := range []string{maestro.AttrStatusHash, maestro.AttrClusterName, maestro.AttrResourceID, maestro.AttrLogTracing, maestro.AttrContentType} {
				if maestro.StringAttr(got, k) != maestro.StringAttr(want, k) {
					t.Errorf("%s = %q, want %q", k, maestro.StringAttr(got, k), maestro.StringAttr(want, k))
				}
			}
		})
	}
}

// TestMaestroBehaviour walks the cases of PROTOCOL.md §16, each asserting
// Maestro's code or behaviour. Every case runs on a sim of its own and
// builds the state it needs first (a work created, updated, its status
// reported), so that any case runs alone (-run) and none depends on
// another having run.
func TestMaestroBehaviour(t *testing.T) {
	idA := maestro.ResourceID(goldenSource, goldenCluster, "work-a")
	idB := maestro.ResourceID(goldenSource, "maestro-cluster-2", "work-b")
	run := func(name string, f func(t *testing.T, e *rawEnv)) {
		t.Run(name, func(t *testing.T) { f(t, newRawEnv(t)) })
	}

	run("n.subscription-id on both ports", func(t *testing.T, e *rawEnv) {
		for _, s := range []*stream{e.agentA, e.sourceStream} {
			ids := s.header.Get(maestro.SubscriptionIDHeader)
			if len(ids) != 1 || uuid.Validate(ids[0]) != nil {
				t.Fatalf("subscription-id header %v", ids)
			}
		}
	})
	run("l.broker subscribe without cluster", func(t *testing.T, e *rawEnv) {
		sc, err := e.broker.Subscribe(context.Background(), &pbv1.SubscriptionRequest{DataType: maestro.DataType})
		if err == nil {
			_, err = sc.Recv()
		}
		wantCode(t, err, codes.Unknown, "invalid subscription request: missing cluster name")
	})
	run("e.empty attributes", func(t *testing.T, e *rawEnv) {
		ev := &pbv1.CloudEvent{Id: uuid.NewString(), Source: goldenSource, SpecVersion: "1.0", Type: maestro.TypeSpecCreate}
		wantCode(t, publish(e.source, ev), codes.Unknown, "failed to convert to cloudevent: unknown Message encoding")
		wantCode(t, publish(e.broker, ev), codes.InvalidArgument, "failed to convert protobuf to cloudevent: unknown Message encoding")
	})
	run("a.create for unknown consumer", func(t *testing.T, e *rawEnv) {
		ev := specEvent(t, maestro.TypeSpecCreate, "no-such-cluster", maestro.ResourceID(goldenSource, "no-such-cluster", "w"), 0)
		wantCode(t, publish(e.source, ev), codes.Unknown, `violates foreign key constraint "fk_resources_consumers"`)
	})
	run("b.create without resourceversion", func(t *testing.T, e *rawEnv) {
		ev := specEvent(t, maestro.TypeSpecCreate, goldenCluster, idA, 0)
		delete(ev.Attributes, maestro.AttrResourceVersion)
		wantCode(t, publish(e.source, ev), codes.Unknown, "failed to get resourceversion extension")
	})
	run("o.create delivered to agent", func(t *testing.T, e *rawEnv) {
		ev := specEvent(t, maestro.TypeSpecCreate, goldenCluster, idA, 0)
		mustPublish(t, e.source, ev)
		got := e.agentA.next(t)
		rv, ok := intAttr(got, maestro.AttrResourceVersion)
		if got.GetType() != maestro.TypeSpecCreate || got.GetSource() != maestro.BrokerSource || got.GetId() != ev.GetId() ||
			!ok || rv != 1 || maestro.StringAttr(got, maestro.AttrContentType) != maestro.ContentTypeJSON ||
			!strings.Contains(maestro.StringAttr(got, maestro.AttrMetadata), `"name":"`+idA+`"`) || len(got.GetBinaryData()) != 4092 {
			t.Fatalf("agent got %v", withoutVolatile(got))
		}
	})
	run("c.create duplicate id", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		wantCode(t, publish(e.source, specEvent(t, maestro.TypeSpecCreate, goldenCluster, idA, 0)), codes.Unknown, "This Resource already exists")
	})
	run("d.update unknown id", func(t *testing.T, e *rawEnv) {
		unknown := uuid.NewString()
		wantCode(t, publish(e.source, specEvent(t, maestro.TypeSpecUpdate, goldenCluster, unknown, 0)), codes.Unknown, "Resource with id='"+unknown+"' not found")
	})
	run("p.status forwarded to source", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		st := e.statusEvent(t, goldenCluster, idA, 1)
		mustPublish(t, e.broker, st)
		got := e.sourceStream.next(t)
		if got.GetType() != maestro.TypeStatusUpdate || maestro.StringAttr(got, maestro.AttrSequenceID) != maestro.StringAttr(st, maestro.AttrSequenceID) ||
			!bytes.HasPrefix(got.GetBinaryData(), []byte(`{"manifestBundle":{"manifests":[`)) {
			t.Fatalf("source got %s seq %s", got.GetType(), maestro.StringAttr(got, maestro.AttrSequenceID))
		}
		var b bundleView
		if code := getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+idA, &b); code != http.StatusOK || b.Status["SequenceID"] != maestro.StringAttr(st, maestro.AttrSequenceID) {
			t.Fatalf("REST %d status %v", code, b.Status)
		}
	})
	run("q.update with version 0 means latest", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		mustPublish(t, e.source, specEvent(t, maestro.TypeSpecUpdate, goldenCluster, idA, 0))
		got := e.agentA.next(t)
		if rv, _ := intAttr(got, maestro.AttrResourceVersion); got.GetType() != maestro.TypeSpecUpdate || rv != 2 {
			t.Fatalf("agent got %s rv %d, want update_request rv 2", got.GetType(), rv)
		}
	})
	run("r.update with a stale version", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.update(t, e.agentA, goldenCluster, idA)
		wantCode(t, publish(e.source, specEvent(t, maestro.TypeSpecUpdate, goldenCluster, idA, 1)), codes.Unknown,
			"the resource version is not the latest, the latest version: 2")
	})
	run("h.status for a stale version is ignored", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		stored := e.report(t, goldenCluster, idA, 1)
		e.update(t, e.agentA, goldenCluster, idA)
		mustPublish(t, e.broker, e.statusEvent(t, goldenCluster, idA, 1))
		e.sourceStream.none(t, 100*time.Millisecond)
		var after bundleView
		getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+idA, &after)
		if after.Status["SequenceID"] != maestro.StringAttr(stored, maestro.AttrSequenceID) || after.Status["ObservedVersion"] != float64(1) {
			t.Fatalf("stale status was stored: %v", after.Status)
		}
	})
	run("s.status for the current version is stored", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.report(t, goldenCluster, idA, 1)
		e.update(t, e.agentA, goldenCluster, idA)
		st := e.statusEvent(t, goldenCluster, idA, 2)
		mustPublish(t, e.broker, st)
		if got := e.sourceStream.next(t); maestro.StringAttr(got, maestro.AttrSequenceID) != maestro.StringAttr(st, maestro.AttrSequenceID) {
			t.Fatal("current status not forwarded")
		}
		var b bundleView
		getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+idA, &b)
		if b.Status["ObservedVersion"] != float64(2) {
			t.Fatalf("REST status %v", b.Status)
		}
	})
	run("older sequence id is ignored", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.update(t, e.agentA, goldenCluster, idA)
		e.report(t, goldenCluster, idA, 2)
		st := e.statusEvent(t, goldenCluster, idA, 2)
		maestro.SetSequenceID(st, "1") // a node-0 snowflake at the epoch
		wantCode(t, publish(e.broker, st), codes.FailedPrecondition, "{}")
		old := e.statusEvent(t, goldenCluster, idA, 2)
		newer := e.statusEvent(t, goldenCluster, idA, 2)
		mustPublish(t, e.broker, newer)
		e.sourceStream.next(t)
		mustPublish(t, e.broker, old) // minted before newer: not newer
		e.sourceStream.none(t, 100*time.Millisecond)
	})
	run("g.status without originalsource", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		st := e.statusEvent(t, goldenCluster, idA, 1)
		delete(st.Attributes, maestro.AttrOriginalSource)
		err := publish(e.broker, st)
		wantCode(t, err, codes.FailedPrecondition, "{}")
		if s, _ := status.FromError(err); s.Message() != "{}" {
			t.Fatalf("message %q, want {}", s.Message())
		}
		e.sourceStream.none(t, 50*time.Millisecond)
	})
	run("t.status with the wrong cluster", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		wantCode(t, publish(e.broker, e.statusEvent(t, "maestro-cluster-2", idA, 1)), codes.FailedPrecondition, "{}")
		e.sourceStream.none(t, 50*time.Millisecond)
	})
	run("i.status for an unknown id is ignored", func(t *testing.T, e *rawEnv) {
		unknown := uuid.NewString()
		mustPublish(t, e.broker, e.statusEvent(t, goldenCluster, unknown, 1))
		if code := getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+unknown, nil); code != http.StatusNotFound {
			t.Fatalf("REST %d, want 404", code)
		}
	})
	run("f.spec create on the broker port", func(t *testing.T, e *rawEnv) {
		id := uuid.NewString()
		wantCode(t, publish(e.broker, specEvent(t, maestro.TypeSpecCreate, goldenCluster, id, 0)), codes.FailedPrecondition, "{}")
		if code := getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+id, nil); code != http.StatusNotFound {
			t.Fatalf("REST %d, want 404", code)
		}
	})
	run("u.delete of an unknown id", func(t *testing.T, e *rawEnv) {
		mustPublish(t, e.source, specEvent(t, maestro.TypeSpecDelete, goldenCluster, uuid.NewString(), 0))
		e.agentA.none(t, 50*time.Millisecond)
	})
	run("j1.create for a consumer that subscribes later", func(t *testing.T, e *rawEnv) {
		if err := e.srv.CreateConsumer("late-cluster"); err != nil {
			t.Fatal(err)
		}
		id := maestro.ResourceID(goldenSource, "late-cluster", "w")
		mustPublish(t, e.source, specEvent(t, maestro.TypeSpecCreate, "late-cluster", id, 0))
		time.Sleep(100 * time.Millisecond)
		late := subscribe(t, e.broker, maestro.AgentSubscription("late-cluster"))
		if got := late.next(t); got.GetType() != maestro.TypeSpecCreate || maestro.StringAttr(got, maestro.AttrResourceID) != id {
			t.Fatalf("late agent got %s for %s", got.GetType(), maestro.StringAttr(got, maestro.AttrResourceID))
		}
	})
	run("j2.resync with an empty list returns everything", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentB, "maestro-cluster-2", idB)
		req, err := maestro.NewSpecResyncRequest("maestro-cluster-2", nil, maestro.EventOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustPublish(t, e.broker, req)
		got := e.agentB.next(t)
		rv, _ := intAttr(got, maestro.AttrResourceVersion)
		if got.GetType() != maestro.TypeSpecResyncResponse || got.GetSource() != maestro.BrokerSource || rv != 1 ||
			strings.Contains(maestro.StringAttr(got, maestro.AttrMetadata), "creationTimestamp") {
			t.Fatalf("resync response %s source %s rv %d metadata %s", got.GetType(), got.GetSource(), rv, maestro.StringAttr(got, maestro.AttrMetadata))
		}
	})
	run("v.resync with an unknown id synthesizes a delete", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentB, "maestro-cluster-2", idB)
		unknown := uuid.NewString()
		req, err := maestro.NewSpecResyncRequest("maestro-cluster-2", []maestro.ResourceVersion{
			{ResourceID: idB, ResourceVersion: 1}, {ResourceID: unknown, ResourceVersion: 1},
		}, maestro.EventOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustPublish(t, e.broker, req)
		got := e.agentB.next(t)
		_, hasRV := got.GetAttributes()[maestro.AttrResourceVersion]
		_, isTS := got.GetAttributes()[maestro.AttrDeletionTimestamp].GetAttr().(*pbv1.CloudEventAttributeValue_CeTimestamp)
		if got.GetSource() != "source" || maestro.StringAttr(got, maestro.AttrResourceID) != unknown || hasRV || !isTS || len(got.GetBinaryData()) != 0 {
			t.Fatalf("synthesized delete: %v", got)
		}
		e.agentB.none(t, 50*time.Millisecond) // the up-to-date id is not resent
	})
	run("k.status resync to every subscriber of the source", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.report(t, goldenCluster, idA, 1)
		e.create(t, e.agentB, "maestro-cluster-2", idB) // a work with no status: not resent
		second := subscribe(t, e.source, maestro.SourceSubscription(goldenSource))
		eventually(t, "second source stream", func() bool { return len(e.srv.sources.of(goldenSource)) == 2 })
		req, err := maestro.NewStatusResyncRequest(goldenSource, nil, maestro.EventOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustPublish(t, e.source, req)
		for _, s := range []*stream{e.sourceStream, second} {
			if got := s.next(t); maestro.StringAttr(got, maestro.AttrResourceID) != idA {
				t.Fatalf("resync sent %s, want the only stored status (%s)", maestro.StringAttr(got, maestro.AttrResourceID), idA)
			}
			s.none(t, 50*time.Millisecond)
		}
		t.Run("w.hashes", func(t *testing.T) {
			r, _ := e.srv.store.get(idA)
			same, _ := maestro.NewStatusResyncRequest(goldenSource, []maestro.ResourceStatusHash{{ResourceID: idA, StatusHash: r.Status.StatusHash}}, maestro.EventOptions{})
			mustPublish(t, e.source, same)
			e.sourceStream.none(t, 100*time.Millisecond)
			differs, _ := maestro.NewStatusResyncRequest(goldenSource, []maestro.ResourceStatusHash{{ResourceID: idA, StatusHash: "0"}}, maestro.EventOptions{})
			mustPublish(t, e.source, differs)
			if got := e.sourceStream.next(t); maestro.StringAttr(got, maestro.AttrResourceID) != idA {
				t.Fatal("differing hash not resent")
			}
			second.next(t)
		})
	})
	run("x.delete sent to the agent", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.update(t, e.agentA, goldenCluster, idA)
		del := specEvent(t, maestro.TypeSpecDelete, goldenCluster, idA, 0)
		mustPublish(t, e.source, del)
		got := e.agentA.next(t)
		rv, _ := intAttr(got, maestro.AttrResourceVersion)
		_, isTS := got.GetAttributes()[maestro.AttrDeletionTimestamp].GetAttr().(*pbv1.CloudEventAttributeValue_CeTimestamp)
		if got.GetType() != maestro.TypeSpecDelete || rv != 2 || !isTS || len(got.GetBinaryData()) != 4092 || got.GetId() == del.GetId() ||
			!strings.Contains(maestro.StringAttr(got, maestro.AttrMetadata), "deletionTimestamp") {
			t.Fatalf("agent got %s rv %d deletiontimestamp %v data %d", got.GetType(), rv, isTS, len(got.GetBinaryData()))
		}
		mustPublish(t, e.source, del) // idempotent: no second event
		e.agentA.none(t, 50*time.Millisecond)
	})
	run("y.Deleted removes the bundle", func(t *testing.T, e *rawEnv) {
		e.create(t, e.agentA, goldenCluster, idA)
		e.update(t, e.agentA, goldenCluster, idA)
		mustPublish(t, e.source, specEvent(t, maestro.TypeSpecDelete, goldenCluster, idA, 0))
		e.agentA.next(t)
		ack := proto.Clone(golden(t, "11-agent-status-deleted")).(*pbv1.CloudEvent)
		maestro.SetStringAttr(ack, maestro.AttrResourceID, idA)
		maestro.SetResourceVersion(ack, 2)
		maestro.SetSequenceID(ack, e.seq.Next())
		mustPublish(t, e.broker, ack)
		if got := e.sourceStream.next(t); !bytes.Contains(got.GetBinaryData(), []byte(`"type":"Deleted"`)) {
			t.Fatal("source did not get the Deleted status")
		}
		if code := getJSON(t, e.srv.RESTURL()+maestro.ResourceBundlesPath+"/"+idA, nil); code != http.StatusNotFound {
			t.Fatalf("REST %d after Deleted, want 404", code)
		}
	})
}

// TestHeartbeats checks both ports send the SDK's heartbeat on idle streams.
func TestHeartbeats(t *testing.T) {
	srv := startSim(t, func(c *Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	if err := srv.CreateConsumer("c1"); err != nil {
		t.Fatal(err)
	}
	want := golden(t, "12-heartbeat")
	for _, s := range []*stream{
		subscribe(t, dial(t, srv.BrokerAddr()), maestro.AgentSubscription("c1")),
		subscribe(t, dial(t, srv.SourceAddr()), maestro.SourceSubscription("s1")),
	} {
		select {
		case hb := <-s.heartbeats:
			if uuid.Validate(hb.GetId()) != nil || hb.GetSpecVersion() != want.GetSpecVersion() || hb.GetType() != want.GetType() ||
				hb.GetSource() != "" || len(hb.GetAttributes()) != 0 || hb.GetData() != nil {
				t.Fatalf("heartbeat %v, want the shape of %v", hb, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
}

// TestResyncResponseMatchesGolden stores golden 01 for an agent that then
// asks for everything: the answer is golden 06 exactly (a resync carries
// the stored metadata, without creationTimestamp).
func TestResyncResponseMatchesGolden(t *testing.T) {
	e := newRawEnv(t)
	mustPublish(t, e.source, golden(t, "01-source-spec-create_request"))
	e.agentA.next(t)
	mustPublish(t, e.broker, golden(t, "05b-agent-spec-resync_request-empty"))
	got, want := e.agentA.next(t), golden(t, "06-broker-to-agent-spec-resync_response")
	if !proto.Equal(got, want) {
		t.Fatalf("resync response differs from golden 06:\n got %v\nwant %v", withoutVolatile(got), withoutVolatile(want))
	}
}

// TestDeleteMatchesGolden deletes golden 01 with golden 09: the agent gets
// golden 10 but for what Maestro makes new at delete time (id, time,
// deletiontimestamp, and the timestamps inside metadata).
func TestDeleteMatchesGolden(t *testing.T) {
	e := newRawEnv(t)
	mustPublish(t, e.source, golden(t, "01-source-spec-create_request"))
	e.agentA.next(t)
	mustPublish(t, e.source, golden(t, "09-source-spec-delete_request"))
	got, want := e.agentA.next(t), golden(t, "10-broker-to-agent-spec-delete_request")
	volatile := []string{maestro.AttrTime, maestro.AttrDeletionTimestamp, maestro.AttrMetadata}
	g, w := withoutVolatile(got, volatile...), withoutVolatile(want, volatile...)
	g.Id, w.Id = "", ""
	if !proto.Equal(g, w) {
		t.Fatalf("delete differs from golden 10:\n got %v\nwant %v", g, w)
	}
	if got.GetId() == want.GetId() || uuid.Validate(got.GetId()) != nil {
		t.Fatalf("delete id %q: want a new uuid", got.GetId())
	}
	for _, k := range volatile {
		if _, ok := got.GetAttributes()[k]; !ok {
			t.Errorf("delete lacks %s", k)
		}
	}
	meta := maestro.StringAttr(got, maestro.AttrMetadata)
	for _, key := range []string{`"creationTimestamp":"`, `"deletionTimestamp":"`, `"name":"dda8b541-0bb7-5b43-b48c-ffff60a10ea1"`} {
		if !strings.Contains(meta, key) {
			t.Errorf("delete metadata %s lacks %s", meta, key)
		}
	}
}

// TestInvalidManifest checks Maestro's manifest validation on create.
func TestInvalidManifest(t *testing.T) {
	e := newRawEnv(t)
	for name, data := range map[string]string{
		"no kind":     `{"manifests":[{"apiVersion":"v1","metadata":{"name":"a"}}]}`,
		"no name":     `{"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}]}`,
		"duplicate":   `{"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]}`,
		"not object":  `[1]`,
		"not JSON":    `{"manifests":`,
		"generateNam": `{"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","generateName":"x"}}]}`,
	} {
		ev := specEvent(t, maestro.TypeSpecCreate, goldenCluster, uuid.NewString(), 0)
		ev.Data = &pbv1.CloudEvent_BinaryData{BinaryData: []byte(data)}
		want := "failed to create resource: the manifest in the resource is invalid"
		if name == "not JSON" {
			want = "failed to decode cloudevent: failed to convert cloudevent to resource payload"
		}
		err := publish(e.source, ev)
		if s, _ := status.FromError(err); s.Code() != codes.Unknown || !strings.Contains(s.Message(), want) {
			t.Errorf("%s: %v, want Unknown %q", name, err, want)
		}
	}
}

// TestBadMetadata: work metadata that is not a JSON object is refused when
// Maestro would fail to store it.
func TestBadMetadata(t *testing.T) {
	e := newRawEnv(t)
	for _, meta := range []string{`null`, `[1]`, `{"name":`, `"s"`} {
		ev := specEvent(t, maestro.TypeSpecCreate, goldenCluster, uuid.NewString(), 0)
		maestro.SetStringAttr(ev, maestro.AttrMetadata, meta)
		wantCode(t, publish(e.source, ev), codes.Unknown, "failed to unmarshal metadata extension to object")
	}
}
