// Package run drives the stages: it gathers what discovery and inspection find for every app,
// hands it to the pure planner, and (in later stages) executes the plan.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/hostlimit"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/target"
)

// Options tune a run. The zero value is what the CLI uses.
type Options struct {
	Log             *slog.Logger
	Version         string // archmirror's version, recorded in attestations
	AppConcurrency  int    // apps discovered at once; default 8
	InspectParallel int    // registry requests at once; default 16
	Discover        []discover.Option
	Target          []target.Option
}

// Plan discovers every app, inspects the target for every version × component, and plans.
// A failing app is reported in its AppReport and does not stop the others; the error return is
// for what stops everything (the target cannot be opened, the context ended).
func Plan(ctx context.Context, cfg *config.Config, o Options) (plan.Plan, error) {
	_, _, p, err := survey(ctx, cfg, o)
	return p, err
}

// survey opens the target, discovers every app, inspects the target and plans: what every
// command starts with.
func survey(ctx context.Context, cfg *config.Config, o Options) (target.Target, []plan.App, plan.Plan, error) {
	o = o.withHostLimits()
	tgt, err := openTarget(cfg, o)
	if err != nil {
		return nil, nil, plan.Plan{}, err
	}
	apps, err := gather(ctx, cfg, tgt, o)
	if err != nil {
		return nil, nil, plan.Plan{}, err
	}
	return tgt, apps, plan.Make(apps, cfg.Runner), nil
}

func openTarget(cfg *config.Config, o Options) (target.Target, error) {
	return target.New(cfg.Target, append([]target.Option{
		target.WithCacheDir(filepath.Join(cfg.Cache.Dir, "manifests")),
		target.WithLogger(o.logger()),
		target.WithTimeouts(cfg.Timeouts.Header.Duration, cfg.Timeouts.Request.Duration),
	}, o.Target...)...)
}

// withHostLimits gives the run one bound of requests in flight per upstream host, shared by
// every source and gate, and one per registry host for the target: a host counts the run's
// requests, not a source's. Limits in o.Discover or o.Target (a service sharing its own
// between runs) come later, and win.
func (o Options) withHostLimits() Options {
	o.Discover = append([]discover.Option{discover.WithHostLimit(hostlimit.New(discover.DefaultHostConcurrency))}, o.Discover...)
	o.Target = append([]target.Option{target.WithHostLimit(hostlimit.New(target.DefaultHostConcurrency))}, o.Target...)
	return o
}

func (o Options) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// gather discovers every app and inspects the target for every version × component.
func gather(ctx context.Context, cfg *config.Config, tgt target.Target, o Options) ([]plan.App, error) {
	log := o.logger()

	apps := make([]plan.App, len(cfg.Apps))
	var g errgroup.Group
	g.SetLimit(orDefault(o.AppConcurrency, 8))
	for i, app := range cfg.Apps {
		apps[i] = plan.App{App: app, Repos: repos(tgt, app)}
		g.Go(func() error {
			opts := append([]discover.Option{
				discover.WithCacheDir(filepath.Join(cfg.Cache.Dir, "http")),
				discover.WithLogger(log.With("app", app.Name)),
				discover.WithTimeouts(cfg.Timeouts.Header.Duration, cfg.Timeouts.Request.Duration),
			}, o.Discover...)
			res, err := discover.ForApp(ctx, app, opts...)
			if err != nil {
				apps[i].Err = err
				log.Error("discovery failed", "app", app.Name, "err", err)
				return nil
			}
			apps[i].Discovery = res
			log.Debug("discovered", "app", app.Name, "versions", len(res.Versions), "latest", res.HighestStable, "skipped", len(res.Skipped))
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return inspect(ctx, tgt, apps, o)
}

// inspect (again) reads what the target holds for every version × component of the
// discovered apps, replacing their States.
func inspect(ctx context.Context, tgt target.Target, apps []plan.App, o Options) ([]plan.App, error) {
	log := o.logger()
	// One bounded batch for every app, so the registry sees one steady stream of requests.
	type owner struct{ app int }
	var reqs []target.Request
	var owners []owner
	for i, a := range apps {
		if a.Err != nil {
			continue
		}
		for _, v := range a.Discovery.Versions {
			for _, c := range a.App.Components {
				reqs = append(reqs, target.Request{Repo: c.Name, Tag: v.Version})
				owners = append(owners, owner{i})
			}
		}
	}
	results := target.InspectAll(ctx, tgt, reqs, orDefault(o.InspectParallel, 16))
	for _, o := range owners {
		apps[o.app].States = map[plan.Key]target.State{}
	}
	errs := make([][]error, len(apps))
	for k, r := range results {
		a := &apps[owners[k].app]
		if r.Err != nil {
			errs[owners[k].app] = append(errs[owners[k].app], r.Err)
			continue
		}
		a.States[plan.Key{Component: r.Repo, Version: r.Tag}] = r.State
	}
	for i, e := range errs {
		if len(e) > 0 {
			apps[i].Err = fmt.Errorf("inspect %s: %w", apps[i].App.Name, errors.Join(e...))
			log.Error("inspection failed", "app", apps[i].App.Name, "err", apps[i].Err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return apps, nil
}

// repos names each component's repository in the target, for reports.
func repos(tgt target.Target, app *config.App) map[string]string {
	out := map[string]string{}
	for _, c := range app.Components {
		out[c.Name] = tgt.Name(c.Name)
	}
	return out
}

func orDefault(n, def int) int {
	if n < 1 {
		return def
	}
	return n
}
