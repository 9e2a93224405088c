package run

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
)

// unitKey names one version of one component of an app.
type unitKey struct{ App, Component, Version string }

// unit is one version of one component: its jobs, then its publication.
type unit struct {
	app     *plan.App
	comp    *config.Component
	version discover.Version
	jobs    []plan.Job
	deps    []*unit
	done    chan struct{} // closed when the unit is published or has failed
}

func (u *unit) key() unitKey { return unitKey{u.app.App.Name, u.comp.Name, u.version.Version} }

func (s *syncer) run(ctx context.Context, p plan.Plan) {
	var platforms []platform.Platform
	for _, j := range p.Jobs {
		if pl, err := platform.Parse(j.Platform); err == nil && !slices.Contains(platforms, pl) {
			platforms = append(platforms, pl)
		}
	}
	s.build = s.builder(p, s.startPool(ctx, platforms), s.o.Parallel)
	units := map[unitKey]*unit{}
	var order []*unit
	for _, j := range p.Jobs {
		k := unitKey{j.App, j.Component, j.Version}
		u, ok := units[k]
		if !ok {
			a := s.app(j.App)
			u = &unit{app: a, comp: component(a.App, j.Component), version: version(a, j.Version), done: make(chan struct{})}
			units[k] = u
			order = append(order, u)
		}
		u.jobs = append(u.jobs, j)
	}
	for _, u := range order {
		deps, _ := u.comp.Dependencies()
		for _, d := range deps {
			if du, ok := units[unitKey{u.app.App.Name, d, u.version.Version}]; ok {
				u.deps = append(u.deps, du)
			}
		}
	}
	var wg sync.WaitGroup
	for _, u := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(u.done)
			s.runUnit(ctx, u)
		}()
	}
	wg.Wait()
}

func (s *syncer) runUnit(ctx context.Context, u *unit) {
	ctx = s.leases.context(ctx, u.app.App.Name)
	for _, d := range u.deps {
		<-d.done
		if _, ok := s.index(d.key()); !ok {
			s.skip(u, fmt.Sprintf("dependency %s %s was not published", d.comp.Name, d.version.Version))
			return
		}
	}
	refs := func(name string) (string, error) { return s.ref(u, name) }
	results := make([]JobResult, len(u.jobs))
	var wg sync.WaitGroup
	for i, j := range u.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.runJob(ctx, u, j, refs)
		}()
	}
	wg.Wait()
	built := map[string]string{}
	failed := false
	for _, r := range results {
		if r.Status == JobBuilt {
			built[r.Platform] = r.Digest
		} else {
			failed = true
		}
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, results...)
	s.mu.Unlock()
	if failed || ctx.Err() != nil {
		// Rule 1: nothing is tagged; the pushed platforms stay in the registry by digest and
		// the next run builds only what is missing.
		return
	}
	res, err := s.pub.Publish(ctx, publish.Unit{
		Repo: u.comp.Name, Version: u.version.Version, Platforms: u.app.App.Platforms,
		Built: built, Annotations: s.annotations(u.app.App, u.comp, u.version), Stable: u.version.Semver == nil || u.version.Semver.Prerelease() == "",
		KeepLatest: true, // moved once per repository after the batch: see convergeLatest
	})
	ur := UnitResult{App: u.app.App.Name, Component: u.comp.Name, Version: u.version.Version, Result: res}
	if err != nil {
		ur.Error = err.Error()
		s.log.Error("publish failed", "app", ur.App, "component", ur.Component, "version", ur.Version, "err", err)
	} else {
		if res.Status.Complete() {
			s.mu.Lock()
			s.indexes[u.key()] = res.Digest
			s.mu.Unlock()
		}
		s.log.Info("published", "repo", s.tgt.Ref(u.comp.Name), "version", ur.Version, "status", res.Status, "digest", res.Digest, "latest", res.Latest)
	}
	s.mu.Lock()
	s.units = append(s.units, ur)
	s.mu.Unlock()
}

// completeIndexes are the digests of the indexes the plan found complete.
func completeIndexes(p plan.Plan) map[unitKey]string {
	out := map[unitKey]string{}
	for _, a := range p.Apps {
		for _, v := range a.Versions {
			for _, c := range v.Components {
				if c.Status == plan.Complete {
					out[unitKey{a.Name, c.Component, v.Version}] = c.Digest
				}
			}
		}
	}
	return out
}

func (s *syncer) skip(u *unit, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range u.jobs {
		s.jobs = append(s.jobs, JobResult{Job: j, Status: JobSkipped, Error: why})
	}
	s.log.Warn("skipped", "app", u.app.App.Name, "component", u.comp.Name, "version", u.version.Version, "reason", why)
}

// sortResults puts jobs and publications in plan order: the run finishes them in any order.
func (s *syncer) sortResults(p plan.Plan) {
	pos := map[string]int{}
	for i, j := range p.Jobs {
		pos[j.ID] = i
	}
	slices.SortStableFunc(s.jobs, func(a, b JobResult) int { return pos[a.ID] - pos[b.ID] })
	first := map[unitKey]int{}
	for i := len(p.Jobs) - 1; i >= 0; i-- { // backwards: each unit ends on its first job
		j := p.Jobs[i]
		first[unitKey{j.App, j.Component, j.Version}] = i
	}
	slices.SortStableFunc(s.units, func(a, b UnitResult) int {
		return first[unitKey{a.App, a.Component, a.Version}] - first[unitKey{b.App, b.Component, b.Version}]
	})
}
