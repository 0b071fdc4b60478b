package replay

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/transport"
)

// streamHealth is what the replay knows of one kept Subscribe stream:
// whether it is up, since when it is down and why. The connect phase waits
// on it and the give-up watch reads it, so a target that is not there
// stops the run with its address and cause instead of playing a schedule
// of sends that all fail.
type streamHealth struct {
	who, addr string

	mu        sync.Mutex
	up        bool
	downSince time.Time
	err       error // the last subscribe or stream error

	// down counts the runner's streams that are down, this one among
	// them while it is: the watch looks at every stream only when some
	// are, not thousands of locks ten times a second.
	down *atomic.Int64
}

func (h *streamHealth) setUp() {
	h.mu.Lock()
	if !h.up {
		h.down.Add(-1)
	}
	h.up, h.err = true, nil
	h.mu.Unlock()
}

// setDown marks the stream down (from now, unless it already was) with
// the error that took it down or kept it down.
func (h *streamHealth) setDown(err error) {
	h.mu.Lock()
	if h.up || h.downSince.IsZero() {
		h.downSince = time.Now()
	}
	if h.up {
		h.down.Add(1)
	}
	h.up = false
	if err != nil {
		h.err = err
	}
	h.mu.Unlock()
}

// downFor says whether the stream has been down for at least d at now,
// and with which error.
func (h *streamHealth) downFor(now time.Time, d time.Duration) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.up && !h.downSince.IsZero() && now.Sub(h.downSince) >= d, h.err
}

// newStreamHealth registers a stream, down until it subscribes.
func (r *runner) newStreamHealth(who, addr string) *streamHealth {
	h := &streamHealth{who: who, addr: addr, downSince: time.Now(), down: &r.streamsDownNow}
	h.down.Add(1)
	r.mu.Lock()
	r.health = append(r.health, h)
	r.mu.Unlock()
	return h
}

// streamsUp counts the kept streams that are subscribed, of all.
func (r *runner) streamsUp() (up, all int) {
	r.mu.Lock()
	hs := r.health
	r.mu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		if h.up {
			up++
		}
		h.mu.Unlock()
	}
	return up, len(hs)
}

// streamsDown describes the streams down for at least d, grouped by
// address with the last error of each ("" when every stream is up). With
// explain, a cause that does not say why TLS failed is checked with a probe
// of the address (see explainTLS): for the message that ends a run.
func (r *runner) streamsDown(d time.Duration, explain bool) string {
	if r.streamsDownNow.Load() == 0 {
		return ""
	}
	r.mu.Lock()
	hs := r.health
	r.mu.Unlock()
	type addrDown struct {
		agents, sources int
		err             error
	}
	byAddr := map[string]*addrDown{}
	n, now := 0, time.Now()
	for _, h := range hs {
		down, err := h.downFor(now, d)
		if !down {
			continue
		}
		n++
		a := byAddr[h.addr]
		if a == nil {
			a = &addrDown{}
			byAddr[h.addr] = a
		}
		if strings.HasPrefix(h.who, "source") {
			a.sources++
		} else {
			a.agents++
		}
		if err != nil {
			a.err = err
		}
	}
	if n == 0 {
		return ""
	}
	addrs := make([]string, 0, len(byAddr))
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	parts := make([]string, 0, len(addrs))
	for _, addr := range addrs {
		a := byAddr[addr]
		var who []string
		if a.agents > 0 {
			who = append(who, plural(a.agents, "agent stream"))
		}
		if a.sources > 0 {
			who = append(who, plural(a.sources, "source stream"))
		}
		cause := "no answer"
		if a.err != nil {
			cause = status.Convert(a.err).Message()
		}
		if explain {
			cause = r.explainTLS(addr, cause)
		}
		parts = append(parts, fmt.Sprintf("%s (%s): %s", addr, strings.Join(who, ", "), cause))
	}
	return fmt.Sprintf("%d of %d streams: %s", n, len(hs), strings.Join(parts, "; "))
}

// explainTLS makes the cause of a stream that could not subscribe say what
// TLS refused. Under TLS 1.3 a server refuses a client certificate (none,
// expired, of another CA) after the client's side of the handshake, and
// gRPC then often reports only "broken pipe" or "EOF": a probe of the
// address reads the server's alert instead. A server asking for a client
// certificate gets a hint, since Go's client sends none when its own is not
// signed by a CA the server names.
func (r *runner) explainTLS(addr, cause string) string {
	if r.tlsCfg == nil {
		return cause
	}
	if !strings.Contains(cause, "tls:") && !strings.Contains(cause, "x509:") {
		if err := transport.ProbeTLS(addr, r.tlsCfg, tlsProbeTimeout); err != nil {
			cause = "TLS: " + err.Error()
		}
	}
	if strings.Contains(cause, "certificate required") {
		cause += " (the server wants a client certificate signed by a CA it trusts: --cert-file and --key-file)"
	}
	return cause
}

// tlsProbeTimeout bounds one probe of explainTLS: a server that completes
// the handshake and says nothing in this time did not refuse it.
const tlsProbeTimeout = 2 * time.Second

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// awaitStreams waits, after the connect phase, for the streams whose first
// subscribe failed to come up (they retry with backoff), for at most
// ConnectTimeout. It returns why the run cannot start, or "".
func (r *runner) awaitStreams(ctx context.Context) string {
	deadline := time.Now().Add(r.cfg.ConnectTimeout)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if r.streamsDown(0, false) == "" || ctx.Err() != nil {
			return ""
		}
		if !time.Now().Before(deadline) {
			return fmt.Sprintf("could not subscribe within %v (--connect-timeout): %s", r.cfg.ConnectTimeout, r.streamsDown(0, true))
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// watch stops the run when the target is gone or stalled, so a run never
// waits in silence: it gives up when a stream stays down for GiveUpAfter
// (a run against a target that is gone would otherwise play its whole
// schedule with every send failing), and when specs wait for their
// delivery with none delivered for StallTimeout (a target that accepts
// Publish and delivers nothing would hold a --max run on its backpressure
// forever). It returns when ctx ends.
func (r *runner) watch(ctx context.Context) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var stall stallWatch
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if down := r.streamsDown(r.cfg.GiveUpAfter, true); down != "" {
			r.stop("gave up on the target", fmt.Sprintf("gave up on the target: down for %v (--give-up-after): %s", r.cfg.GiveUpAfter, down))
			return
		}
		waiting := r.tr.specsWaiting()
		if stall.stalled(time.Now(), waiting, r.tr.deliveredCount(), r.cfg.StallTimeout) {
			why := "the target accepts Publish but delivers nothing to agents"
			if r.cfg.Only == SideAgents {
				why = "is the real source sending (--only agents)?"
			}
			r.stop("the target delivered nothing", fmt.Sprintf("no spec delivered for %v (--stall-timeout) while %d waited: %s",
				r.cfg.StallTimeout, waiting, why))
			return
		}
	}
}

// watchInterval is how often watch looks: a small part of the bounds it
// enforces, and cheap (a lock per stream).
const watchInterval = 100 * time.Millisecond

// stallWatch measures how long sends have waited without progress.
type stallWatch struct {
	since time.Time // when the current wait without progress began; zero when nothing waits
	seen  int64     // the progress count then
}

// stalled says whether, at now, something has waited (waiting > 0) for at
// least d with the progress count staying at done.
func (w *stallWatch) stalled(now time.Time, waiting int, done int64, d time.Duration) bool {
	if waiting == 0 {
		w.since = time.Time{}
		return false
	}
	if w.since.IsZero() || done != w.seen {
		w.since, w.seen = now, done
		return false
	}
	return now.Sub(w.since) >= d
}

// stop ends the playing of the trace for a reason that fails the run: what
// is waiting for the pacer and the rest of the trace are not sent, with
// the note "not sent: " + short; why goes to the summary's problems.
func (r *runner) stop(short, why string) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopWhy, r.stopShort = why, short
		r.mu.Unlock()
		r.notef("%s", why)
		r.stopPlay()
	})
}

// stopped returns why the run was stopped, or "".
func (r *runner) stopped() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopWhy
}

// notSentNote is the note of a send the run ended before: interrupted, or
// stopped (see stop).
func (r *runner) notSentNote() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopShort != "" {
		return "not sent: " + r.stopShort
	}
	return noteInterrupted
}
