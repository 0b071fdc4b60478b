package maestro

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/snowflake"
	"github.com/google/uuid"
)

// RunIDs.ID is the UUIDv5 of the original id in the run's namespace, as
// uuid.NewSHA1 makes it (a diff undoes the map with that), for ids shorter
// and longer than its stack buffer; without a run id, or for "", the id
// is kept.
func TestRunIDs(t *testing.T) {
	m := NewRunIDs("run-7")
	ns := uuid.NewSHA1(uuid.NameSpaceOID, []byte("cereplay-run:run-7"))
	for _, rid := range []string{goldenResourceID, "x", strings.Repeat("long-id-", 20)} {
		if got, want := m.ID(rid), uuid.NewSHA1(ns, []byte(rid)).String(); got != want {
			t.Errorf("ID(%q) = %s, want %s", rid, got, want)
		}
	}
	if got := m.ID(""); got != "" {
		t.Errorf(`ID("") = %q, want ""`, got)
	}
	if got := NewRunIDs("").ID(goldenResourceID); got != goldenResourceID {
		t.Errorf("no run id: ID = %s, want the id itself", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.ID(goldenResourceID) }); n > 1 {
		t.Errorf("ID allocates %v times, want 1 (the string)", n)
	}
}

func TestResourceID(t *testing.T) {
	// PROTOCOL.md §6 example, produced by the SDK source client.
	if got := ResourceID("maestro", "maestro-cluster-1", "maestro-cluster-1-gb-0"); got != goldenResourceID {
		t.Errorf("ResourceID = %s, want %s", got, goldenResourceID)
	}
	if ResourceID("maestro", "c1", "w") == ResourceID("maestro", "c2", "w") {
		t.Error("different consumers gave the same id")
	}
	// Every golden event carries the same derived id.
	g := loadGolden(t, "01-source-spec-create_request")
	if got := StringAttr(g.decoded, AttrResourceID); got != goldenResourceID {
		t.Errorf("golden resource id %s", got)
	}
}

func TestAgentID(t *testing.T) {
	if got := AgentID(goldenCluster); got != goldenAgent {
		t.Errorf("AgentID = %s, want %s", got, goldenAgent)
	}
}

func TestSequenceIDsLayout(t *testing.T) {
	const epochMillis = 1288834974657
	before := time.Now().UnixMilli()
	id, err := strconv.ParseInt(NewSequenceIDs().Next(), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	if node := (id >> 12) & 0x3ff; node != 1 {
		t.Errorf("node bits = %d, want 1", node)
	}
	ms := id>>22 + epochMillis
	if ms < before || ms > after {
		t.Errorf("timestamp %d not within [%d, %d]", ms, before, after)
	}
	// The golden agent statuses were minted by the SDK codec: same node.
	for _, name := range []string{"03-agent-status-update_request", "11-agent-status-deleted"} {
		seq, err := strconv.ParseInt(StringAttr(loadGolden(t, name).decoded, AttrSequenceID), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if node := (seq >> 12) & 0x3ff; node != 1 {
			t.Errorf("%s: node bits = %d", name, node)
		}
	}
}

func TestSequenceIDsStrictlyIncreasingAcrossGoroutines(t *testing.T) {
	const goroutines, perG = 8, 5000
	s := NewSequenceIDs()
	results := make([][]int64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ids := make([]int64, perG)
			for i := range ids {
				v, err := strconv.ParseInt(s.Next(), 10, 64)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = v
			}
			results[g] = ids
		})
	}
	wg.Wait()
	seen := make(map[int64]bool, goroutines*perG)
	for g, ids := range results {
		for i, v := range ids {
			if i > 0 && v <= ids[i-1] {
				t.Fatalf("goroutine %d: id %d not after %d", g, v, ids[i-1])
			}
			if seen[v] {
				t.Fatalf("duplicate id %d", v)
			}
			seen[v] = true
		}
	}
}

// Making a generator while another goroutine reads an id's node (as sim
// does to compare sequence ids) is not a data race (run with -race).
func TestNewSequenceIDsWhileParsing(t *testing.T) {
	t.Parallel()
	id := NewSequenceIDs().Next()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = NewSequenceIDs()
		}
	}()
	for range 200 {
		parsed, err := snowflake.ParseString(id)
		if err != nil || parsed.Node() != SequenceNode {
			t.Fatalf("%s: node %d, %v", id, parsed.Node(), err)
		}
	}
	<-done
}
