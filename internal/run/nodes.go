package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// pool routes build jobs to BuildKit nodes: the nodes configured for a job's platform, else
// builders.default (where other platforms run under QEMU) unless emulation is off. Each node
// takes at most its max jobs at once; among the nodes a job may use it goes to the least busy.
// A node that fails its health check, or stops answering during a build, is down for the rest
// of the run, and its jobs are retried on another node of the platform.
//
// A pool is a build.Builder: it builds a Spec on a node of the Spec's platform, and again on
// another one when that node dies under the build.
type pool struct {
	newBuilder func(nd config.Node) build.Builder
	perNode    int                     // a node's slots when the config gives no max
	builders   map[string]config.Nodes // the config's builders: platform or "default" → nodes
	emulation  bool                    // jobs without a native node may run on builders.default
	log        *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) when a slot frees or a node goes down
	nodes   map[string]*node
}

type node struct {
	addr      string
	slots     int
	used      int
	b         build.Builder
	down      error
	platforms []string // what the node's workers build, native first; nil when not known
}

// platformLister is what a builder that can be health-checked has (build.BuildKit does).
type platformLister interface {
	Platforms(ctx context.Context) ([]string, error)
}

var _ build.Builder = (*pool)(nil)

// startPool makes the pool of every node the jobs of platforms may use (config.Builders), with
// perNode slots on a node the config gives no max, and health-checks them.
func startPool(ctx context.Context, cfg *config.Config, platforms []platform.Platform, newBuilder func(config.Node) build.Builder, perNode int, log *slog.Logger) *pool {
	p := &pool{newBuilder: newBuilder, perNode: perNode, builders: cfg.Builders, emulation: cfg.Emulation, log: log,
		changed: make(chan struct{}), nodes: map[string]*node{}}
	seen := map[string]bool{}
	for _, pl := range platforms {
		ns, ok := p.builders[pl.String()]
		if !ok {
			ns = p.defaultNodes()
		}
		for _, nd := range ns {
			if !seen[nd.Addr] {
				seen[nd.Addr] = true
				p.add(nd)
			}
		}
	}
	p.check(ctx, 10*time.Second)
	return p
}

// Build builds s on the least busy node of its platform that is up, waiting for a slot; when
// the node goes away under the build (what it pushed by digest is harmless), another node of
// the platform builds s again. The Result (also with an error) names the node last used and
// the ones that died.
func (p *pool) Build(ctx context.Context, s build.Spec) (build.Result, error) {
	cands, err := p.candidates(s.Platform)
	if err != nil {
		return build.Result{}, err
	}
	var used string
	var retried []string
	for {
		n, err := p.acquire(ctx, cands, retried)
		if err != nil {
			return build.Result{Builder: used, Retried: retried}, err
		}
		used = n.addr
		p.log.Info("building", "job", s.JobID, "builder", n.addr)
		res, err := n.b.Build(ctx, s)
		p.release(n)
		if err == nil {
			res.Builder, res.Retried = n.addr, retried
			return res, nil
		}
		if !p.died(ctx, n, err) {
			return build.Result{Builder: used, Retried: retried}, err
		}
		retried = append(retried, n.addr)
		p.log.Warn("BuildKit node died during a build; retrying on another node", "job", s.JobID, "node", n.addr, "err", untrusted.FirstLine(err.Error()))
		if s.Log != nil {
			fmt.Fprintf(s.Log, "\n--- %s stopped answering (%s); building again on another node ---\n\n", n.addr, untrusted.FirstLine(err.Error()))
		}
	}
}

// add makes the node for nd known to the pool (once).
func (p *pool) add(nd config.Node) *node {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.nodes[nd.Addr]; ok {
		return n
	}
	slots := nd.Max
	if slots < 1 {
		slots = p.perNode
	}
	n := &node{addr: nd.Addr, slots: slots, b: p.newBuilder(nd)}
	p.nodes[nd.Addr] = n
	return n
}

// check asks every node whether it answers and what it builds, all at once; one that does not
// answer within timeout is down for the run.
func (p *pool) check(ctx context.Context, timeout time.Duration) {
	p.mu.Lock()
	nodes := make([]*node, 0, len(p.nodes))
	for _, n := range p.nodes {
		nodes = append(nodes, n)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		pl, ok := n.b.(platformLister)
		if !ok {
			continue // a builder that cannot tell (a test's fake) is taken as healthy
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			ps, err := pl.Platforms(cctx)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				n.down = fmt.Errorf("health check: %w", err)
				p.log.Warn("BuildKit node is down for this run", "node", n.addr, "err", err)
				return
			}
			n.platforms = ps
		}()
	}
	wg.Wait()
}

// native is the platform node addr builds without emulation ("" when not known).
func (p *pool) native(addr string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.nodes[addr]; ok && len(n.platforms) > 0 {
		return n.platforms[0]
	}
	return ""
}

// acquire takes a slot on the least busy node of addrs that is up and not in skip, waiting for
// one to free up; it fails when every node of addrs is down or skipped, naming why.
func (p *pool) acquire(ctx context.Context, addrs []string, skip []string) (*node, error) {
	for {
		p.mu.Lock()
		var best *node
		var why []string
		for _, a := range addrs {
			n := p.nodes[a]
			switch {
			case n == nil:
				why = append(why, a+": not configured")
			case slices.Contains(skip, a):
				why = append(why, a+": died during this job")
			case n.down != nil:
				why = append(why, a+": "+n.down.Error())
			case n.used < n.slots && (best == nil || n.used*best.slots < best.used*n.slots):
				best = n
			}
		}
		if best != nil {
			best.used++
			p.mu.Unlock()
			return best, nil
		}
		if len(why) == len(addrs) {
			p.mu.Unlock()
			return nil, fmt.Errorf("no BuildKit node left (%s)", strings.Join(why, "; "))
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *pool) release(n *node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n.used--
	p.notify()
}

// died checks, after a failed build, whether the node itself is gone (it does not answer a
// health check); if so it is down for the rest of the run.
func (p *pool) died(ctx context.Context, n *node, buildErr error) bool {
	pl, ok := n.b.(platformLister)
	if !ok || ctx.Err() != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := pl.Platforms(cctx); err == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.down == nil {
		n.down = fmt.Errorf("stopped answering during a build: %s", untrusted.FirstLine(buildErr.Error()))
		p.notify()
	}
	return true
}

func (p *pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// errNoNative is a job whose platform has no native node, with emulation off.
var errNoNative = errors.New("no native BuildKit node")

// candidates are the nodes a job of platform pl may run on: builders.<pl>; else, with
// emulation on, builders.default (or $BUILDKIT_HOST, or the default socket); else only the
// default nodes that are native for pl.
func (p *pool) candidates(pl platform.Platform) ([]string, error) {
	if ns, ok := p.builders[pl.String()]; ok {
		return addrs(ns), nil
	}
	def := p.defaultNodes()
	if p.emulation {
		return addrs(def), nil
	}
	var out, other []string
	for _, a := range addrs(def) {
		if nat := p.native(a); nat == pl.String() {
			out = append(out, a)
		} else {
			other = append(other, a+" is "+orUnknown(nat))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w for %s and emulation: false (add builders.%s; %s)", errNoNative, pl, pl, strings.Join(other, ", "))
	}
	return out, nil
}

func (p *pool) defaultNodes() config.Nodes {
	if ns, ok := p.builders["default"]; ok && len(ns) > 0 {
		return ns
	}
	return config.Nodes{{Addr: build.Address("")}}
}

func orUnknown(s string) string {
	if s == "" {
		return "not known (it did not answer)"
	}
	return s
}

func addrs(ns config.Nodes) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Addr
	}
	return out
}

// startPool starts the pool of BuildKit nodes the jobs of platforms may use: --per-builder
// slots on a node the config gives no max (default --parallel).
func (s *syncer) startPool(ctx context.Context, platforms []platform.Platform) *pool {
	n := s.o.PerBuilder
	if n < 1 {
		n = s.o.Parallel
	}
	return startPool(ctx, s.cfg, platforms, s.o.NewBuilder, n, s.log)
}
