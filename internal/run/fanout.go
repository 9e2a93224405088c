package run

// The CI fan-out: `plan --format github-matrix` → `build --job ID` on each runner → `publish`
// → `attest`. The registry itself carries the state between the steps, so runners pass nothing
// to each other: a built job is recorded by tagging its platform image with StagingTag, and
// publish assembles every version whose platforms are all there (in an index already, or
// recorded), exactly as sync would.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
)

// ErrNoSuchJob is BuildJob's error for an ID the config and the window do not give.
var ErrNoSuchJob = errors.New("no such job")

// BuildJob builds the one job id of the plan (see plan.JobID) and records it with StagingTag.
// A job whose version is complete, or whose image is recorded already, is not built again: the
// report then has no job, or the recorded one with Builder "recorded". Components with
// {{ref}} need their dependency published first (the matrix's earlier stage and a publish).
func BuildJob(ctx context.Context, cfg *config.Config, o SyncOptions, id string) (rep Report, err error) {
	rep.Started = time.Now().UTC()
	defer func() { rep.Finished = time.Now().UTC() }()
	s, err := prepare(ctx, cfg, o, &rep)
	if err != nil {
		return rep, err
	}
	p := rep.Plan
	i := slices.IndexFunc(p.Jobs, func(j plan.Job) bool { return j.ID == id })
	if i < 0 {
		return rep, explainNoJob(cfg, p, id)
	}
	job := p.Jobs[i]
	pl, err := platform.Parse(job.Platform)
	if err != nil {
		return rep, err
	}
	rep.LogDir = s.logDir
	s.build = s.builder(p, s.startPool(ctx, []platform.Platform{pl}), 1)
	a := s.app(job.App)
	u := &unit{app: a, comp: component(a.App, job.Component), version: version(a, job.Version)}
	rep.Jobs = []JobResult{s.runJob(ctx, u, job, func(name string) (string, error) { return s.ref(u, name) })}
	return rep, nil
}

// explainNoJob says why id is not a job of the plan: its version is complete, or the config
// and window do not have it at all.
func explainNoJob(cfg *config.Config, p plan.Plan, id string) error {
	parts := strings.Split(id, "/")
	if len(parts) == 4 {
		for _, a := range p.Apps {
			if a.Name != parts[0] {
				continue
			}
			if a.Error != "" {
				return fmt.Errorf("job %s: app %s: %s", id, a.Name, a.Error)
			}
			for _, v := range a.Versions {
				for _, c := range v.Components {
					if v.Version == parts[2] && c.Component == parts[1] && c.Status == plan.Complete {
						return nil // nothing to do: published already
					}
				}
			}
		}
	}
	return fmt.Errorf("%w %q in the plan of %s (IDs are app/component/version/os-arch, as plan --format github-matrix prints them)", ErrNoSuchJob, id, cfg.Path)
}

// Publish assembles, for every version of the window that is not complete, the index of the
// platforms it has (in an incomplete index) and the ones recorded by BuildJob, and tags it when
// every platform is there; then it moves latest, as sync does. Versions still missing a
// platform are reported Incomplete (and make the report Failed). Running it again changes
// nothing. With versions, only those are published (latest still moves to the highest complete
// stable version).
func Publish(ctx context.Context, cfg *config.Config, o SyncOptions, versions ...string) (rep Report, err error) {
	rep.Started = time.Now().UTC()
	defer func() { rep.Finished = time.Now().UTC() }()
	s, err := prepare(ctx, cfg, o, &rep)
	if err != nil {
		return rep, err
	}
	for _, ar := range rep.Plan.Apps {
		a := s.app(ar.Name)
		if a == nil || a.Err != nil {
			continue
		}
		for _, vr := range ar.Versions {
			if len(versions) > 0 && !slices.Contains(versions, vr.Version) {
				continue
			}
			v := version(a, vr.Version)
			for _, cr := range vr.Components {
				if cr.Status == plan.Complete {
					continue
				}
				c := component(a.App, cr.Component)
				recorded := map[string]string{}
				for _, m := range cr.Missing {
					pl, err := platform.Parse(m)
					if err != nil {
						continue
					}
					st, err := s.tgt.Inspect(ctx, c.Name, StagingTag(v.Version, pl))
					if err == nil && st.Exists && slices.Contains(st.Platforms, pl.String()) {
						recorded[pl.String()] = st.Digest
					}
				}
				res, err := s.pub.Publish(ctx, publish.Unit{
					Repo: c.Name, Version: v.Version, Platforms: a.App.Platforms, Built: recorded,
					Annotations: s.annotations(a.App, c, v), Stable: v.Semver == nil || v.Semver.Prerelease() == "",
					KeepLatest: true,
				})
				ur := UnitResult{App: a.App.Name, Component: c.Name, Version: v.Version, Result: res}
				if err != nil {
					ur.Error = err.Error()
				} else if res.Status.Complete() {
					s.indexes[unitKey{a.App.Name, c.Name, v.Version}] = res.Digest
				}
				s.units = append(s.units, ur)
			}
		}
	}
	s.convergeLatest(ctx)
	rep.Units = s.units
	return rep, nil
}
