package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// SyncFunc runs one sync of cfg (the config with the run's request applied).
type SyncFunc func(ctx context.Context, cfg *config.Config) (run.Report, error)

// runSync is the real sync: run.Sync with the service's logger, version, signer and a target
// transport that counts registry requests.
func (s *Server) runSync(ctx context.Context, cfg *config.Config) (run.Report, error) {
	signer, err := run.Signer(cfg.Sign)
	if err != nil {
		return run.Report{}, err
	}
	return run.Sync(ctx, cfg, run.SyncOptions{Options: s.runOptions(cfg), Parallel: s.o.Parallel, Signer: signer})
}

func (s *Server) runOptions(cfg *config.Config) run.Options {
	return run.Options{Log: s.log, Version: s.o.Version, Target: []target.Option{target.WithTransportWrap(s.countRequests)}}
}

// execute runs r (taken off the queue) to the end and records it.
func (s *Server) execute(ctx context.Context, r *Run) {
	cfg, err := applyRequest(s.config(), r.Request)
	if err != nil {
		s.finish(r, Failed, err.Error())
		return
	}
	lock, err := lockTarget(cfg)
	if err != nil {
		s.finish(r, Failed, err.Error())
		return
	}
	defer lock.Unlock()
	s.log.Info("run started", "id", r.ID, "trigger", r.Trigger)
	runCtx, cancel := withRunDeadline(ctx, cfg.Timeouts.Run.Duration)
	defer cancel()
	rep, err := s.sync(runCtx, cfg)
	s.record(r, rep)
	status := Succeeded
	msg := ""
	var overdue overdueError
	switch {
	case ctx.Err() != nil:
		status, msg = Cancelled, "stopped by shutdown"
	case errors.As(context.Cause(runCtx), &overdue):
		status, msg = Failed, overdue.Error()
	case err != nil:
		status, msg = Failed, err.Error()
	case rep.Failed():
		status, msg = Failed, failures(rep)
	}
	s.finish(r, status, msg)
	s.log.Info("run finished", "id", r.ID, "status", status, "built", r.Summary.Built, "failed", r.Summary.Failed)
	s.rateLimits(rep.Plan)
	if ctx.Err() == nil {
		s.inspect(ctx)
	}
}

// overdueError is the cause of a run's context that its deadline (timeouts.run) ended.
type overdueError struct{ limit time.Duration }

func (e overdueError) Error() string {
	return fmt.Sprintf("run exceeded its deadline of %s (timeouts.run)", e.limit)
}

// withRunDeadline is ctx cancelled after limit, as shutdown cancels a run (the sync stops the
// same way and tags nothing partial), with an overdueError as its cause. A limit that is not
// positive is none.
func withRunDeadline(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if limit <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, limit, overdueError{limit})
}

func (s *Server) finish(r *Run, status, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(r, status, msg)
}

// record copies what a sync did into r.
func (s *Server) record(r *Run, rep run.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range rep.Jobs {
		job := Job{ID: j.ID, App: j.App, Component: j.Component, Version: j.Version, Platform: j.Platform,
			Status: string(j.Status), Digest: j.Digest, Builder: j.Builder, Seconds: j.Seconds, Error: j.Error}
		switch j.Status {
		case run.JobBuilt:
			r.Summary.Built++
		case run.JobFailed:
			r.Summary.Failed++
			job.LogExcerpt = tail(j.Log, 40)
		default:
			r.Summary.Skipped++
		}
		r.Jobs = append(r.Jobs, job)
	}
	for _, u := range rep.Units {
		r.Units = append(r.Units, Unit{App: u.App, Component: u.Component, Version: u.Version, Status: string(u.Status),
			Digest: u.Digest, Latest: u.Latest, Error: u.Error})
		switch u.Status {
		case publish.Published:
			r.Summary.Published++
		case publish.Repaired:
			r.Summary.Repaired++
		}
	}
	for _, a := range rep.Attestations {
		if a.Added > 0 {
			r.Summary.Attested++
		}
	}
	for _, a := range rep.Plan.Apps {
		if a.Error != "" {
			r.Apps = append(r.Apps, AppError{App: a.Name, Error: a.Error})
		}
	}
}

// failures says in one line what failed in a run.
func failures(rep run.Report) string {
	var parts []string
	for _, a := range rep.Plan.Apps {
		if a.Error != "" {
			parts = append(parts, "app "+a.Name)
		}
	}
	for _, j := range rep.Jobs {
		if j.Status != run.JobBuilt {
			parts = append(parts, string(j.Status)+" "+j.ID)
		}
	}
	for _, u := range rep.Units {
		if u.Error != "" {
			parts = append(parts, "publish "+u.Component+" "+u.Version)
		}
	}
	for _, a := range rep.Attestations {
		if a.Error != "" {
			parts = append(parts, "attest "+a.Component+" "+a.Version)
		}
	}
	if len(parts) > 8 {
		parts = append(parts[:8], fmt.Sprintf("and %d more", len(parts)-8))
	}
	return "failed: " + strings.Join(parts, ", ")
}

// tail is the last n lines of the file at path, at most 16 KiB of it; "" when it cannot be read.
func tail(path string, n int) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		if _, err := f.Seek(-max, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// inspectAtStart inspects the target once so the API and the status page have the apps' state
// before the first run; the service is ready after it (whatever it found).
func (s *Server) inspectAtStart(ctx context.Context) {
	s.inspect(ctx)
	s.ready.Store(true)
}

// inspect plans (discovery and inspection, nothing built) with the config in use and refreshes
// the apps' state.
func (s *Server) inspect(ctx context.Context) {
	cfg := s.config()
	p, err := run.Plan(ctx, cfg, s.runOptions(cfg))
	if err != nil {
		s.log.Warn("inspection failed", "err", err)
		return
	}
	s.mu.Lock()
	s.apps = appsView(cfg, p, s.lastRun)
	apps := s.apps
	s.mu.Unlock()
	s.m.inspected(apps)
	s.rateLimits(p)
}

func (s *Server) rateLimits(p plan.Plan) {
	for _, a := range p.Apps {
		if a.RateLimit != nil {
			s.m.rateLimit.WithLabelValues(a.RateLimit.Host).Set(float64(a.RateLimit.Remaining))
		}
	}
}

// appsView is what the API and the page show of each app: the plan's state of every version,
// component and platform, with the last run's failed builds marked.
func appsView(cfg *config.Config, p plan.Plan, last *Run) []App {
	failed := map[string]Job{} // by job ID
	appErr := map[string]string{}
	if last != nil {
		for _, j := range last.Jobs {
			if j.Status == string(run.JobFailed) {
				failed[j.ID] = j
				appErr[j.App] = j.ID + ": " + untrusted.FirstLine(j.Error)
			}
		}
		for _, a := range last.Apps {
			appErr[a.App] = a.Error
		}
	}
	var out []App
	for _, ar := range p.Apps {
		a := App{Name: ar.Name, Latest: ar.Latest, LastError: appErr[ar.Name], Versions: []Version{}}
		if ar.Error != "" {
			a.LastError = ar.Error
		}
		if ca := cfg.App(ar.Name); ca != nil {
			for _, pl := range ca.Platforms {
				a.Platforms = append(a.Platforms, pl.String())
			}
		}
		for _, vr := range ar.Versions {
			v := Version{Version: vr.Version, Tag: vr.Tag, Latest: vr.Latest}
			behind := false
			for _, cr := range vr.Components {
				c := Component{Name: cr.Component, Repo: cr.Repo, Status: string(cr.Status), Digest: cr.Digest, Cells: map[string]Cell{}}
				if cr.Status != plan.Complete {
					behind = true
				}
				for _, pl := range a.Platforms {
					cell := Cell{State: CellMissing}
					if d, ok := cr.Digests[pl]; ok {
						cell = Cell{State: CellComplete, Digest: d}
					} else if slices.Contains(cr.Present, pl) {
						cell.State = CellComplete
					}
					if pp, err := platform.Parse(pl); err == nil && cell.State == CellMissing {
						if j, ok := failed[plan.JobID(ar.Name, cr.Component, vr.Version, pp.Slug())]; ok {
							cell = Cell{State: CellFailed, Error: untrusted.FirstLine(j.Error)}
						}
					}
					c.Cells[pl] = cell
				}
				v.Components = append(v.Components, c)
			}
			if behind {
				a.Behind++
			}
			a.Versions = append(a.Versions, v)
		}
		out = append(out, a)
	}
	return out
}

// applyRequest returns cfg with a run's overrides applied to a copy (cfg is shared with the API
// and later runs).
func applyRequest(cfg *config.Config, req Request) (*config.Config, error) {
	return cfg.With(config.Overrides{Apps: req.Apps, MaxVersions: req.MaxVersions, Platforms: req.Platforms})
}

// lockTarget takes the lock file of cfg's target without waiting: another process syncing the
// same target (another serve, or a cron job taking the same lock) makes this run fail with an
// error saying so instead of racing it.
func lockTarget(cfg *config.Config) (*flock.Flock, error) {
	sum := sha256.Sum256([]byte(cfg.Target.Registry))
	dir := filepath.Join(cfg.Cache.Dir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	path := filepath.Join(dir, "target-"+hex.EncodeToString(sum[:8])+".lock")
	l := flock.New(path)
	ok, err := l.TryLock()
	switch {
	case err != nil:
		return nil, fmt.Errorf("lock %s: %w", path, err)
	case !ok:
		return nil, errors.New("another archmirror is syncing " + cfg.Target.Registry + " (it holds " + path + "); this run did nothing")
	}
	return l, nil
}

// status is what the page shows, now.
func (s *Server) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Now: time.Now().UTC(), Apps: s.apps, NextRun: s.next, ConfigError: s.cfgErr,
		Schedule: s.cfg.Schedule}
	if s.cfg.Timezone != "" {
		st.Schedule += " (" + s.cfg.Timezone + ")"
	}
	if s.running != nil {
		r := *s.running
		st.Running = &r
	}
	st.LastRun = s.lastRun
	return st
}
