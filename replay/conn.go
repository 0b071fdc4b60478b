package replay

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
)

// TLS holds the client security options shared by every connection. Secrets
// are read from files; their contents are never logged.
type TLS = transport.ClientTLS

// connections are the run's gRPC connections (several agents share one,
// --agents-per-conn) and the agents and sources that use them.
type connections struct {
	mu       sync.Mutex // guards what follows
	dial     dialer
	agents   map[string]*agent
	sources  map[string]*source // by id + "\x00" + address
	conns    map[string]rpcClient
	perAddr  map[string]int // agents per broker address
	allConns []rpcClient
}

func newConnections(dial dialer) connections {
	return connections{dial: dial, agents: map[string]*agent{},
		sources: map[string]*source{}, conns: map[string]rpcClient{}, perAddr: map[string]int{}}
}

// streamsPerAddr counts the agents and sources that subscribed, by address.
func (c *connections) streamsPerAddr() (agents, sources map[string]int) {
	agents, sources = map[string]int{}, map[string]int{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.agents {
		if a.started.Load() {
			agents[a.addr]++
		}
	}
	for _, s := range c.sources {
		if s.started.Load() {
			sources[s.addr]++
		}
	}
	return agents, sources
}

// conn returns the shared connection for key, making it on first use
// (both transports connect lazily). Call with r.connections.mu held.
func (r *runner) conn(addr, key string, agent bool) rpcClient {
	if cc := r.conns[key]; cc != nil {
		return cc
	}
	cc, err := r.dial(addr, agent)
	if err != nil {
		// gRPC-go fails only on a malformed target; every call on the
		// nil connection would fail, so report it loudly once.
		r.notef("dial %s: %v", addr, err)
		return nil
	}
	r.conns[key] = cc
	r.allConns = append(r.allConns, cc)
	return cc
}

func (r *runner) closeConns() {
	r.connections.mu.Lock()
	conns := r.allConns
	r.allConns = nil
	r.conns = map[string]rpcClient{}
	r.connections.mu.Unlock()
	for _, cc := range conns {
		cc.close()
	}
}

// agentFor returns the agent of a cluster, creating it (and choosing its
// broker address round-robin) on first use.
func (r *runner) agentFor(cluster string) *agent {
	r.connections.mu.Lock()
	defer r.connections.mu.Unlock()
	if a := r.agents[cluster]; a != nil {
		return a
	}
	n := len(r.agents)
	addr := r.cfg.BrokerAddrs[n%len(r.cfg.BrokerAddrs)]
	group := r.perAddr[addr] / r.cfg.AgentsPerConn
	r.perAddr[addr]++
	req, _ := proto.Marshal(maestro.AgentSubscription(cluster)) // cannot fail for a plain message
	a := &agent{r: r, cluster: cluster, addr: addr, subReq: req, versions: map[string]int64{}, up: make(chan struct{}, 1)}
	if r.playsAgents() { // else the agent only pairs its cluster's specs with a source address
		a.cc = r.conn(addr, fmt.Sprintf("broker %s #%d", addr, group), true)
	}
	r.agents[cluster] = a
	return a
}

// sourceAddrFor pairs a cluster's broker address with a source address, so
// with several independent instances a spec goes to the instance that
// serves its agent.
func (r *runner) sourceAddrFor(a *agent) string {
	for i, b := range r.cfg.BrokerAddrs {
		if b == a.addr {
			return r.cfg.SourceAddrs[i%len(r.cfg.SourceAddrs)]
		}
	}
	return r.cfg.SourceAddrs[0]
}

// sourceFor returns the source with this id on one source address.
func (r *runner) sourceFor(id, addr string) *source {
	r.connections.mu.Lock()
	defer r.connections.mu.Unlock()
	key := id + "\x00" + addr
	if s := r.sources[key]; s != nil {
		return s
	}
	req, _ := proto.Marshal(maestro.SourceSubscription(id))
	s := &source{r: r, id: id, addr: addr, subReq: req, cc: r.conn(addr, "source "+id+" "+addr, false)}
	r.sources[key] = s
	return s
}
