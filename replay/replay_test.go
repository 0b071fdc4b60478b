package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/pace"
	"github.com/cereplay/cereplay/sim"
)

// startSim starts the embedded sim on loopback ports with fast heartbeats.
func startSim(t testing.TB, c sim.Config) *sim.Server {
	t.Helper()
	s, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func simConfig() sim.Config {
	c := sim.LoopbackConfig()
	c.HeartbeatInterval = 200 * time.Millisecond
	return c
}

func baseConfig(s *sim.Server, trace, out string) Config {
	return Config{
		Trace:        trace,
		Out:          out,
		SourceAddrs:  []string{s.SourceAddr()},
		BrokerAddrs:  []string{s.BrokerAddr()},
		RESTURL:      s.RESTURL(),
		Settle:       5 * time.Second,
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond,
	}
}

// checkAccounting asserts that every record of the trace has exactly one
// outcome and returns the outcomes.
func checkAccounting(t *testing.T, trace, out string) map[uint64][]format.Record {
	t.Helper()
	r, err := format.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Manifest().Records
	r.Close()
	outs := readOutcomes(t, out)
	for i := uint64(0); i < uint64(n); i++ {
		if len(outs[i]) != 1 {
			t.Errorf("trace record %d has %d outcomes: %+v", i, len(outs[i]), outs[i])
		}
	}
	if len(outs) != int(n) {
		t.Errorf("%d outcomes for a trace of %d records", len(outs), n)
	}
	return outs
}

// bothTransports runs f as a parallel subtest for each client transport.
func bothTransports(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range []string{TransportLite, TransportGRPCGo} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			f(t, tr)
		})
	}
}

func TestReplayFullAccounting(t *testing.T) {
	t.Parallel()
	bothTransports(t, testReplayFullAccounting)
}

func testReplayFullAccounting(t *testing.T, transport string) {
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	// 16 KiB segments hold two or three events each: every event the
	// replay sends or waits for outlives the buffer it was read from.
	testTrace{Clusters: 3, Works: 4, SegmentSize: 16 << 10}.write(t, trace)

	cfg := baseConfig(s, trace, out)
	cfg.Max = true
	cfg.CreateConsumers = true
	cfg.Transport = transport
	var log bytes.Buffer
	cfg.Log = &logWriter{b: &log}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Summary
	if !res.OK() {
		t.Fatalf("run not OK: %+v\nlog:\n%s", sum, log.String())
	}
	if sum.Schedule != nil {
		t.Errorf("--max has no schedule to keep, summary has %+v", sum.Schedule)
	}
	outs := checkAccounting(t, trace, out)
	want := map[string]int64{"delivered": 4 * 12, "sent": 4}
	for k, v := range want {
		if sum.Outcomes[k] != v {
			t.Errorf("outcomes[%s] = %d, want %d (all: %v)", k, sum.Outcomes[k], v, sum.Outcomes)
		}
	}
	if sum.ConsumersCreated != 3 || sum.SpecsSent != 12 || sum.StatusesSent != 12 {
		t.Errorf("consumers %d, specs %d, statuses %d", sum.ConsumersCreated, sum.SpecsSent, sum.StatusesSent)
	}
	if sum.SpecDelivery.Count != 12 || sum.StatusForward.Count != 12 {
		t.Errorf("latency counts: delivery %d, forward %d", sum.SpecDelivery.Count, sum.StatusForward.Count)
	}
	for i, o := range outs {
		if o[0].Flow == format.FlowSourceToServer && o[0].Outcome.Delivery <= 0 {
			t.Errorf("spec %d delivered without a delivery latency: %+v", i, o[0].Outcome)
		}
	}
	for _, f := range []string{RunFile, SummaryFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if got := readRunInfo(t, out).Settings["transport"]; got != transport {
		t.Errorf("run.json transport %q, want %q", got, transport)
	}
	back, err := ReadSummary(out)
	if err != nil || back.Records != sum.Records || !back.OK {
		t.Fatalf("summary.json: %+v, %v", back, err)
	}
	if err := format.Verify(filepath.Join(out, OutcomesDir)); err != nil {
		t.Fatalf("outcomes do not verify: %v", err)
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil || !strings.Contains(text.String(), "replay OK") {
		t.Fatalf("text summary: %q, %v", text.String(), err)
	}
}

// Two replays with different run ids into one sim both succeed; a third
// with a used run id reports every duplicate.
func TestReplayRunIDsAndDuplicates(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 3}.write(t, trace)
	run := func(id string) *Result {
		cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
		cfg.Max, cfg.CreateConsumers, cfg.RunID = true, true, id
		cfg.Settle = 2 * time.Second
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkAccounting(t, trace, res.Dir)
		return res
	}
	for i, id := range []string{"first", "second"} {
		res := run(id)
		if !res.OK() {
			t.Fatalf("run %s not OK: %v %v", id, res.Summary.Problems, res.Summary.Outcomes)
		}
		// The second run finds the consumers the first one created (409).
		if created, present := res.Summary.ConsumersCreated, res.Summary.ConsumersPresent; i == 0 && created != 2 || i == 1 && present != 2 {
			t.Errorf("run %s: consumers created %d, present %d", id, created, present)
		}
	}
	again := run("first")
	sum := again.Summary
	if again.OK() || sum.Duplicates != 6 || len(sum.DuplicateIDs) != 6 {
		t.Fatalf("replaying run id 'first' again: ok %v, duplicates %d %v, problems %v", again.OK(), sum.Duplicates, sum.DuplicateIDs, sum.Problems)
	}
	var text bytes.Buffer
	_ = sum.WriteText(&text)
	if !strings.Contains(text.String(), "duplicates: 6") || !strings.Contains(text.String(), "--run-id") {
		t.Fatalf("the summary does not name the duplicates:\n%s", text.String())
	}
	idmap, err := os.ReadFile(filepath.Join(again.Dir, IDMapFile))
	if err != nil || strings.Count(string(idmap), "\n") != 1+6 {
		t.Fatalf("idmap.tsv: %q, %v", idmap, err)
	}
	b, err := os.ReadFile(filepath.Join(again.Dir, RunFile))
	if err != nil || !strings.Contains(string(b), "ce-resourceid") || !strings.Contains(string(b), "ce-sequenceid") {
		t.Fatalf("run.json does not list the rewrites: %s %v", b, err)
	}
}

// recordingClock is a FakeClock that remembers every instant waited for.
// It moves only to the instants in moves, in order, one at a time: the
// status dispatcher shares the clock and sleeps to the replies' due times,
// and on a slow machine a delivery can arrive before the pacer's next
// (instant, fake) sleep. A reply's sleep that moved the fake time past a
// spec's due time would make that spec look late, also when the reply's
// due time is itself a later spec's (a reply delay on the rate's grid), so
// the clock only moves to the next instant of moves it has not reached.
// Other sleeps return at once.
type recordingClock struct {
	*pace.FakeClock
	moves  map[int64]bool // UnixNano of the instants the clock moves to
	mu     sync.Mutex
	sleeps []time.Time
}

func (c *recordingClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, t)
	next := c.nextMove()
	c.mu.Unlock()
	if !c.moves[t.UnixNano()] || t.UnixNano() != next {
		return ctx.Err()
	}
	return c.FakeClock.SleepUntil(ctx, t)
}

// nextMove is the earliest instant of moves after the fake time now.
func (c *recordingClock) nextMove() int64 {
	now, next := c.Now().UnixNano(), int64(math.MaxInt64)
	for m := range c.moves {
		if m > now && m < next {
			next = m
		}
	}
	return next
}

func (c *recordingClock) waited(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sleeps {
		if s.Equal(t) {
			return true
		}
	}
	return false
}

// Speed, rate and --start-at schedules, checked on a fake clock: every spec
// is waited for at exactly T0 + its scheduled time.
func TestReplaySchedules(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	offsets := testTrace{Clusters: 2, Works: 5, Gap: 7 * time.Millisecond}.write(t, trace)
	for _, c := range []string{cluster(0), cluster(1)} {
		if err := s.CreateConsumer(c); err != nil {
			t.Fatal(err)
		}
	}
	fakeStart := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		set     func(*Config)
		t0      time.Time
		dueOf   func(n int) time.Duration
		runName string
	}{
		{"speed 2", func(c *Config) { c.Speed = 2 }, fakeStart, func(n int) time.Duration { return (offsets[n] - offsets[0]) / 2 }, "s"},
		{"rate 50", func(c *Config) { c.Rate = 50 }, fakeStart, func(n int) time.Duration { return time.Duration(n) * 20 * time.Millisecond }, "r"},
		{"start-at", func(c *Config) { c.StartAt = fakeStart.Add(time.Hour) }, fakeStart.Add(time.Hour), func(n int) time.Duration { return offsets[n] - offsets[0] }, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &recordingClock{FakeClock: pace.NewFakeClock(fakeStart), moves: map[int64]bool{}}
			for n := range offsets {
				clock.moves[tc.t0.Add(tc.dueOf(n)).UnixNano()] = true
			}
			cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
			cfg.Clock, cfg.RunID, cfg.Settle = clock, tc.runName, 3*time.Second
			tc.set(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Fatalf("not OK: %v %v", res.Summary.Problems, res.Summary.Outcomes)
			}
			for n := range offsets {
				if due := tc.t0.Add(tc.dueOf(n)); !clock.waited(due) {
					t.Errorf("spec %d: never waited for %v (T0 + %v)", n, due, tc.dueOf(n))
				}
			}
			if sc := res.Summary.Schedule; sc == nil || !sc.Kept || sc.Late != 0 || sc.Sends != int64(len(offsets)) {
				t.Errorf("schedule %+v, want kept with %d sends on time", sc, len(offsets))
			}
			info := readRunInfo(t, res.Dir)
			if !info.T0.Equal(tc.t0) {
				t.Errorf("run.json t0 = %v, want %v", info.T0, tc.t0)
			}
			checkAccounting(t, trace, res.Dir)
		})
	}
}

// A run that starts behind its schedule (T0 a minute before the clock)
// sends everything late: the run succeeds, since nothing was lost, and its
// summary says that the schedule was not kept.
func TestReplayScheduleNotKept(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 3}.write(t, trace)
	fakeStart := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.Rate, cfg.Settle = true, 50, 3*time.Second
	cfg.StartAt = fakeStart.Add(-time.Minute)
	// The live view, scraped while the pacer waits for the sixth spec
	// (due at T0 + 100 ms), counts the five sent before it as late.
	var log bytes.Buffer
	cfg.Log, cfg.MetricsListen = &logWriter{b: &log}, "127.0.0.1:0"
	var scraped string
	cfg.Clock = &hookClock{FakeClock: pace.NewFakeClock(fakeStart), at: cfg.StartAt.Add(100 * time.Millisecond), hook: func() {
		scraped = scrapeMetrics(t, cfg.Log.(*logWriter))
	}}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("not OK: %v %v", res.Summary.Problems, res.Summary.Outcomes)
	}
	sc := res.Summary.Schedule
	if sc == nil || sc.Kept || sc.Late != 6 || sc.Sends != 6 || sc.BoundUS != 1000 {
		t.Errorf("schedule %+v, want not kept, 6 of 6 sends later than 1 ms", sc)
	}
	var text bytes.Buffer
	if err := res.Summary.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if want := "schedule NOT kept: 6 of 6 sends (100.0%) left more than 1ms late"; !strings.Contains(text.String(), want) {
		t.Errorf("summary\n%s\nwants %q", text.String(), want)
	}
	if !strings.Contains(scraped, "\ncereplay_replay_late_sends_total 5\n") {
		t.Errorf("metrics during the run, want 5 late sends:\n%s", scraped)
	}
	if got := readRunInfo(t, res.Dir).Settings["late_warn"]; got != "1ms" {
		t.Errorf("run.json late_warn = %q, want 1ms", got)
	}
	checkAccounting(t, trace, out)
}

// hookClock is a FakeClock that calls hook (once) when asked to sleep
// until at: a test looks at a run from inside its schedule.
type hookClock struct {
	*pace.FakeClock
	at   time.Time
	hook func()
	once sync.Once
}

func (c *hookClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.Equal(c.at) {
		c.once.Do(c.hook)
	}
	return c.FakeClock.SleepUntil(ctx, t)
}

// scrapeMetrics reads the metrics of a running replay at the address its
// log gave.
func scrapeMetrics(t *testing.T, log *logWriter) string {
	t.Helper()
	log.mu.Lock()
	_, rest, ok := strings.Cut(log.b.String(), "metrics on ")
	log.mu.Unlock()
	url, _, _ := strings.Cut(rest, "\n")
	if !ok {
		t.Error("the run did not say where its metrics are")
		return ""
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return string(b)
}

// A paced run on the real clock, slow enough that the pacer takes a
// thread of its own between sends, accounts for everything and records in
// run.json at what priority the pacer ran.
func TestReplayPacedRealClock(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	testTrace{Clusters: 2, Works: 3}.write(t, trace)
	cfg := baseConfig(s, trace, out)
	cfg.CreateConsumers, cfg.Rate = true, 50 // 20 ms apart: long enough for the real-time pacer thread
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("not OK: %v %v", res.Summary.Problems, res.Summary.Outcomes)
	}
	checkAccounting(t, trace, out)
	want := pace.Priority(pace.CheckRealtime())
	if got := readRunInfo(t, res.Dir).Settings["pacer_priority"]; got != want {
		t.Errorf("run.json pacer_priority = %q, want %q", got, want)
	}
	if n := res.Summary.SendLateness.Count; n != 6 {
		t.Errorf("send lateness of %d sends, want 6", n)
	}
}

// --limit N sends the first N specs and accounts for everything that
// answers them, although the replies come in the trace long after the
// cut: each in-scope record has exactly one outcome, the rest none.
func TestReplayLimitAccountsForLateAnswers(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
	// Specs every 100 ms, each answered a second later: the replies to
	// the last specs in scope lie ten specs past the cut.
	testTrace{Clusters: 2, Works: 10, Gap: 100 * time.Millisecond, Reply: time.Second}.write(t, trace)
	const limit = 12

	cfg := baseConfig(s, trace, out)
	cfg.Max, cfg.CreateConsumers, cfg.Limit = true, true, limit
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("not OK: %v %v", res.Summary.Problems, res.Summary.Outcomes)
	}
	r, err := format.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	inScope := map[string]bool{} // resource ids of the specs sent
	outs := readOutcomes(t, out)
	var specs, answered int
	for i := uint64(0); ; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read trace record %d: %v", i, err)
		}
		if rec.Flow == format.FlowSourceToServer {
			if specs < limit {
				inScope[rec.ResourceID] = true
			}
			specs++
		}
		want := 0
		if rec.Flow.Subscribe() || inScope[rec.ResourceID] {
			want = 1
		}
		if len(outs[i]) != want {
			t.Errorf("record %d (%s, %s): %d outcomes, want %d", i, rec.Flow, rec.ResourceID, len(outs[i]), want)
		}
		if want == 1 && rec.Flow == format.FlowServerToSource {
			answered++
		}
	}
	if answered != limit {
		t.Errorf("%d forwarded statuses accounted, want %d", answered, limit)
	}
}

func readRunInfo(t *testing.T, dir string) RunInfo {
	t.Helper()
	var info RunInfo
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// A sim restarted in the middle of a run: agents and sources reconnect,
// resync, and every record still ends with exactly one outcome.
func TestReplaySurvivesSimRestart(t *testing.T) {
	t.Parallel()
	bothTransports(t, testReplaySurvivesSimRestart)
}

func testReplaySurvivesSimRestart(t *testing.T, transport string) {
	c := simConfig()
	s1, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// Restart on the same addresses.
	c.SourceListen, c.BrokerListen = s1.SourceAddr(), s1.BrokerAddr()
	c.RESTListen = strings.TrimPrefix(s1.RESTURL(), "http://")
	trace := t.TempDir()
	const clusters, works = 3, 30
	testTrace{Clusters: clusters, Works: works, Gap: 15 * time.Millisecond}.write(t, trace)
	for i := 0; i < clusters; i++ {
		if err := s1.CreateConsumer(cluster(i)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := baseConfig(s1, trace, filepath.Join(t.TempDir(), "run"))
	cfg.Settle = 3 * time.Second
	cfg.Transport = transport

	restarted := make(chan *sim.Server, 1)
	go func() {
		// Stop sim once the schedule is under way (on a busy machine the
		// connect phase alone can outlast a fixed delay, and an outage
		// before T0 loses nothing).
		deadline := time.Now().Add(time.Minute)
		for simReceived(s1) < 10 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		_ = s1.Close()
		time.Sleep(150 * time.Millisecond)
		s2, err := sim.Start(context.Background(), c)
		if err != nil {
			t.Error(err)
			restarted <- nil
			return
		}
		for i := 0; i < clusters; i++ {
			_ = s2.CreateConsumer(cluster(i))
		}
		restarted <- s2
	}()
	res, err := Run(context.Background(), cfg)
	if s2 := <-restarted; s2 != nil {
		defer s2.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Summary
	var text bytes.Buffer
	_ = sum.WriteText(&text)
	t.Logf("summary after a restart:\n%s", text.String())
	checkAccounting(t, trace, res.Dir)
	if sum.Reconnects < clusters+1 {
		t.Errorf("reconnects %d, want at least %d (every agent and the source)", sum.Reconnects, clusters+1)
	}
	if sum.ResyncsSent < clusters {
		t.Errorf("resyncs %d, want %d", sum.ResyncsSent, clusters)
	}
	lost := sum.Outcomes["failed"] + sum.Outcomes["missing"] + sum.Outcomes["not-triggered"] + sum.Outcomes["not-sent"]
	if lost == 0 || sum.OK {
		t.Errorf("a restart lost nothing? outcomes %v", sum.Outcomes)
	}
	if sum.Outcomes["delivered"] == 0 {
		t.Errorf("nothing delivered: %v", sum.Outcomes)
	}
	// Specs sent after the restart reach their agents.
	outs := readOutcomes(t, res.Dir)
	var idx []uint64
	for i := range outs {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	lateDelivered := 0
	for _, i := range idx[len(idx)*3/4:] {
		if o := outs[i][0]; o.Flow == format.FlowSourceToServer && o.Outcome.Status == format.OutcomeDelivered {
			lateDelivered++
		}
	}
	if lateDelivered == 0 {
		t.Errorf("no spec in the last quarter of the trace was delivered after the restart: %v", sum.Outcomes)
	}
}

// logWriter is a goroutine-safe buffer for Config.Log.
type logWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// An interrupted run stops sending, still writes its results, gives no
// record two outcomes, and is not OK.
func TestReplayInterrupted(t *testing.T) {
	t.Parallel()
	s := startSim(t, simConfig())
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 50, Gap: 20 * time.Millisecond}.write(t, trace) // 2 s of specs
	cfg := baseConfig(s, trace, filepath.Join(t.TempDir(), "run"))
	cfg.CreateConsumers, cfg.Settle = true, time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(strings.Join(res.Summary.Problems, ";"), "interrupted") {
		t.Fatalf("interrupted run: ok %v, problems %v", res.OK(), res.Summary.Problems)
	}
	outs := readOutcomes(t, res.Dir)
	for i, o := range outs {
		if len(o) != 1 {
			t.Errorf("record %d has %d outcomes: %+v", i, len(o), o)
		}
	}
	if sent := res.Summary.SpecsSent; sent == 0 || sent >= 100 {
		t.Errorf("%d specs sent before the interruption, want some but not all", sent)
	}
}
