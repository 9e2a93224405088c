package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/redact"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// SyncOptions tune a sync. The zero value builds with BuildKit, two jobs at a time.
type SyncOptions struct {
	Options
	Parallel   int                             // jobs built at once; default 2
	PerBuilder int                             // jobs at once on one BuildKit endpoint; default Parallel
	DryRun     bool                            // plan only
	LogDir     string                          // where each job's build log goes; default <cache.dir>/logs
	NewBuilder func(addr string) build.Builder // default build.NewBuildKit
	Progress   Progress                        // shown each job's start, steps and end; may be nil
	// Signer signs the attestations; default Signer(cfg.Sign). With sign: off in the config and
	// no Signer, nothing is attested.
	Signer *sign.Signer
	// LeaseTTL is how long an app's lease lasts unrenewed; default lease.DefaultTTL.
	LeaseTTL time.Duration
}

// Progress is told what the jobs are doing, for a live display.
type Progress interface {
	JobStarted(id string)
	JobStep(id, step string)
	JobDone(id, status string, err error)
}

// JobStatus is what became of one job.
type JobStatus string

const (
	JobBuilt   JobStatus = "built"
	JobFailed  JobStatus = "failed"
	JobSkipped JobStatus = "skipped" // a dependency failed, or the run was stopped
)

// JobResult is one job's outcome.
type JobResult struct {
	plan.Job
	Status  JobStatus `json:"status"`
	Digest  string    `json:"digest,omitempty"`
	Builder string    `json:"builder,omitempty"` // the node that built it (or failed)
	Retried []string  `json:"retried,omitempty"` // nodes that died while building it
	Seconds float64   `json:"seconds"`
	Log     string    `json:"log,omitempty"` // the full build log on disk
	Error   string    `json:"error,omitempty"`
}

// UnitResult is the publication of one version of one component.
type UnitResult struct {
	App       string `json:"app"`
	Component string `json:"component"`
	Version   string `json:"version"`
	publish.Result
	Error string `json:"error,omitempty"`
}

// Report is everything a sync did.
type Report struct {
	Plan  plan.Plan    `json:"plan"`
	Jobs  []JobResult  `json:"jobs"`
	Units []UnitResult `json:"units"`
	// Attestations lists every complete version of the window and what the attest stage added.
	Attestations []AttestResult `json:"attestations,omitempty"`
	// Held lists the apps left alone because another run holds their lease.
	Held     []HeldApp `json:"held,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	LogDir   string    `json:"log_dir,omitempty"`
}

// HeldApp is an app another run was working on: this run left it alone.
type HeldApp struct {
	App    string    `json:"app"`
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// Failed reports whether any app, job or publication failed. An app another run holds is not
// a failure: that run does its work.
func (r Report) Failed() bool {
	if r.Plan.Failed() {
		return true
	}
	for _, j := range r.Jobs {
		if j.Status != JobBuilt {
			return true
		}
	}
	for _, u := range r.Units {
		if u.Error != "" || u.Status == publish.Incomplete {
			return true
		}
	}
	return attestFailed(r.Attestations)
}

// Sync plans, builds every missing platform, publishes each version's index once all of its
// platforms are there, and moves latest. A failed job stops only its own version (its
// dependents are skipped); everything else goes on. The error return is for what stops the
// whole run (the target cannot be opened, the context ended before anything ran).
//
// Before building, the run takes the lease (internal/lease) of each app that has jobs, and
// inspects the target again for those apps; an app another run holds is left alone and
// listed in Report.Held, so that two runs at once (cron overlap, two replicas) do not build
// the same jobs twice. A run with nothing to build writes nothing, lease included. A dry run
// takes no lease.
//
// A ctx without a deadline gets one: the config's timeouts.run.
func Sync(ctx context.Context, cfg *config.Config, o SyncOptions) (Report, error) {
	rep := Report{Started: time.Now().UTC()}
	if _, ok := ctx.Deadline(); !ok && cfg.Timeouts.Run.Duration > 0 {
		d := cfg.Timeouts.Run.Duration
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, fmt.Errorf("run: not done within %s (timeouts.run): %w", d, context.DeadlineExceeded))
		defer cancel()
	}
	if o.DryRun {
		_, _, p, err := survey(ctx, cfg, o.Options)
		rep.Plan, rep.Finished = p, time.Now().UTC()
		return rep, err
	}
	tgt, apps, p, err := survey(ctx, cfg, o.Options)
	if err != nil {
		return rep, err
	}
	runID := newRunID(rep.Started)
	leases := takeLeases(ctx, busy(apps, p), tgt, runID, o)
	defer leases.release(ctx)
	if len(leases.mine) > 0 || len(leases.held) > 0 {
		// What the target holds may have changed while another run had the lease: plan the
		// apps this run holds from what is there now, and leave the held ones alone.
		rep.Held = leases.held
		apps = leases.drop(apps)
		if apps, err = inspect(ctx, tgt, apps, o.Options); err != nil {
			return rep, err
		}
		p = plan.Make(apps, cfg.Runner)
	}
	rep.Plan = p
	signer := o.Signer
	if signer == nil {
		// A key that does not open stops the run before anything is built: better than
		// publishing a batch of versions nobody can verify.
		if signer, err = Signer(cfg.Sign); err != nil {
			return rep, err
		}
	}
	s, err := newSyncer(cfg, tgt, apps, rep.Plan, o, rep.Started)
	if err != nil {
		return rep, err
	}
	s.runID, s.leases = runID, leases
	rep.LogDir = s.logDir
	s.run(ctx, rep.Plan)
	s.convergeLatest(ctx)
	if signer != nil {
		rep.Attestations = s.attestAll(ctx, signer)
	}
	s.sortResults(rep.Plan)
	rep.Jobs, rep.Units = s.jobs, s.units
	rep.Finished = time.Now().UTC()
	return rep, nil
}

// A job whose push failed on the registry's side is built again (from BuildKit's cache) up to
// maxPushRetries times, waiting pushRetryWait more each time.
var (
	maxPushRetries = 2
	pushRetryWait  = 2 * time.Second
)

// newSyncer sets up what building and publishing need: the publisher, the builders' factory
// (BuildKit with the target's credentials), the log directory of this run.
func newSyncer(cfg *config.Config, tgt target.Target, apps []plan.App, p plan.Plan, o SyncOptions, started time.Time) (*syncer, error) {
	s := &syncer{cfg: cfg, tgt: tgt, o: o, pub: publish.New(tgt, publish.WithLogger(o.logger())), apps: apps, log: o.logger(),
		indexes: completeIndexes(p), built: map[string]built{}, runID: newRunID(started)}
	if s.o.Parallel < 1 {
		s.o.Parallel = 2
	}
	if s.o.NewBuilder == nil {
		kc, err := targetKeychain(cfg.Target, authn.DefaultKeychain)
		if err != nil {
			return nil, err
		}
		s.o.NewBuilder = func(addr string) build.Builder { return build.NewBuildKit(addr, build.WithKeychain(kc)) }
	}
	if s.o.LogDir == "" {
		s.o.LogDir = filepath.Join(cfg.Cache.Dir, "logs")
	}
	s.logDir = filepath.Join(s.o.LogDir, started.Format("20060102T150405Z"))
	return s, nil
}

type syncer struct {
	cfg    *config.Config
	tgt    target.Target
	o      SyncOptions
	pub    *publish.Publisher
	apps   []plan.App
	log    *slog.Logger
	logDir string
	runID  string // names this run in provenance invocation ids
	leases *leases

	mu      sync.Mutex
	indexes map[unitKey]string // complete index digests: the plan's, and what this run published
	built   map[string]built   // by job ID: what this run built, for provenance
	jobs    []JobResult
	units   []UnitResult
	sem     chan struct{} // --parallel
	pool    *pool         // BuildKit nodes
}

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

// index returns the digest of a complete index for k, if the target has one.
func (s *syncer) index(k unitKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.indexes[k]
	return d, ok
}

func (s *syncer) run(ctx context.Context, p plan.Plan) {
	s.sem = make(chan struct{}, s.o.Parallel)
	var platforms []platform.Platform
	for _, j := range p.Jobs {
		if pl, err := platform.Parse(j.Platform); err == nil && !slices.Contains(platforms, pl) {
			platforms = append(platforms, pl)
		}
	}
	s.startPool(ctx, platforms)
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
		if res.Status == publish.Published || res.Status == publish.Repaired || res.Status == publish.Unchanged {
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

// newRunID names a run: its start time and a random suffix.
func newRunID(started time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "archmirror-" + started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (s *syncer) skip(u *unit, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range u.jobs {
		s.jobs = append(s.jobs, JobResult{Job: j, Status: JobSkipped, Error: why})
	}
	s.log.Warn("skipped", "app", u.app.App.Name, "component", u.comp.Name, "version", u.version.Version, "reason", why)
}

func (s *syncer) runJob(ctx context.Context, u *unit, j plan.Job, refs config.RefFunc) JobResult {
	r := JobResult{Job: j}
	// A job an earlier run (or a CI runner) built and recorded is not built again: a sync
	// killed half-way resumes where it stopped.
	rec, err := s.recorded(ctx, j)
	if err != nil {
		r.Status, r.Error = JobFailed, err.Error()
		return r
	}
	if rec.Exists {
		r.Status, r.Digest, r.Builder = JobBuilt, rec.Digest, "recorded"
		return r
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		r.Status, r.Error = JobSkipped, "run stopped: "+ctx.Err().Error()
		return r
	}
	start := time.Now()
	if s.o.Progress != nil {
		s.o.Progress.JobStarted(j.ID)
	}
	// r.Error is the cause alone: the result names the job (the builder's errors start with
	// its ID, for callers that have nothing else to name it by).
	// A builder's error may name the git context, whose user name may be a token: the
	// result, the log and the progress line have it redacted.
	fail := func(err error) JobResult {
		err = redactedError{err}
		r.Status, r.Error, r.Seconds = JobFailed, strings.TrimPrefix(err.Error(), j.ID+": "), time.Since(start).Seconds()
		s.log.Error("job failed", "job", j.ID, "err", err, "log", r.Log)
		if s.o.Progress != nil {
			s.o.Progress.JobDone(j.ID, string(JobFailed), err)
		}
		return r
	}
	spec, err := s.spec(u, j, refs)
	if err != nil {
		return fail(err)
	}
	logPath := filepath.Join(s.logDir, strings.ReplaceAll(j.ID, "/", "_")+".log")
	// The log is the user's alone (0700/0600, like the history database): a build's output
	// can show what a private registry or repository holds.
	if err := os.MkdirAll(s.logDir, 0o700); err != nil {
		return fail(err)
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fail(err)
	}
	defer lf.Close()
	r.Log = logPath
	spec.Log = lf
	if s.o.Progress != nil {
		spec.Step = func(step string) { s.o.Progress.JobStep(j.ID, step) }
	}
	cands, err := s.candidates(spec.Platform)
	if err != nil {
		return fail(err)
	}
	var res build.Result
	pushes := 0
	for {
		n, err := s.pool.acquire(ctx, cands, r.Retried)
		if err != nil {
			return fail(err)
		}
		r.Builder = n.addr
		s.log.Info("building", "job", j.ID, "builder", n.addr)
		res, err = n.b.Build(ctx, spec)
		s.pool.release(n)
		if err == nil {
			break
		}
		if !s.pool.died(ctx, n, err) {
			// BuildKit's push has no retries of ours: a registry that answered it 5xx or
			// dropped it is asked again by building again, from BuildKit's cache.
			if pushes < maxPushRetries && build.TransientPush(err) && ctx.Err() == nil {
				pushes++
				s.log.Warn("the push failed; building again", "job", j.ID, "attempt", pushes+1, "err", untrusted.FirstLine(err.Error()))
				fmt.Fprintf(lf, "\n--- the push failed (%s); building again ---\n\n", untrusted.FirstLine(err.Error()))
				if err := retry.Sleep(ctx, time.Duration(pushes)*pushRetryWait); err != nil {
					return fail(err)
				}
				continue
			}
			return fail(err)
		}
		// The node went away under the build: what it pushed (by digest) is harmless, and
		// another node of the platform builds the job again.
		r.Retried = append(r.Retried, n.addr)
		s.log.Warn("BuildKit node died during a build; retrying on another node", "job", j.ID, "node", n.addr, "err", untrusted.FirstLine(err.Error()))
		fmt.Fprintf(lf, "\n--- %s stopped answering (%s); building again on another node ---\n\n", n.addr, untrusted.FirstLine(err.Error()))
	}
	if err := s.record(ctx, j, res.Digest, rec.Digest); err != nil {
		return fail(fmt.Errorf("built %s but could not record it: %w", res.Digest, err))
	}
	r.Status, r.Digest, r.Seconds = JobBuilt, res.Digest, time.Since(start).Seconds()
	s.mu.Lock()
	s.built[j.ID] = built{spec: spec, res: res, builder: r.Builder}
	s.mu.Unlock()
	if s.o.Progress != nil {
		s.o.Progress.JobDone(j.ID, string(JobBuilt)+" "+res.Digest, nil)
	}
	s.log.Info("built", "job", j.ID, "digest", res.Digest, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	return r
}

// spec renders a job's templates for its platform.
func (s *syncer) spec(u *unit, j plan.Job, refs config.RefFunc) (build.Spec, error) {
	p, err := platform.Parse(j.Platform)
	if err != nil {
		return build.Spec{}, err
	}
	data := config.Data{Version: u.version.Version, Tag: u.version.Tag, OS: p.OS, Arch: p.Arch, Variant: p.Variant, Platform: p.String()}
	c := u.comp
	ctxText, err := c.Context.Render(data, refs)
	if err != nil {
		return build.Spec{}, fmt.Errorf("context: %w", err)
	}
	args := map[string]string{}
	for name, t := range c.Args {
		if args[name], err = t.Render(data, refs); err != nil {
			return build.Spec{}, fmt.Errorf("args.%s: %w", name, err)
		}
	}
	spec := build.Spec{
		JobID: j.ID, Platform: p, Context: s.resolveContext(ctxText), Dockerfile: c.Dockerfile,
		Patches: c.Patches, Args: args, Labels: s.annotations(u.app.App, c, u.version),
		SourceDateEpoch: u.version.Published,
	}
	if _, ok := s.cfg.Target.Layout(); ok {
		spec.Layout = s.tgt.Ref(c.Name)
	} else {
		spec.Push, spec.Insecure = s.tgt.Ref(c.Name), s.tgt.Insecure()
		if c.Cache == "registry" {
			spec.CacheRef = s.tgt.Ref(c.Name) + ":cache-" + p.Slug()
		}
	}
	return spec, nil
}

// resolveContext makes a local context relative to the config file's directory.
func (s *syncer) resolveContext(c string) string {
	if strings.Contains(c, "://") || strings.HasPrefix(c, "git@") || filepath.IsAbs(c) {
		return c
	}
	return filepath.Join(filepath.Dir(s.cfg.Path), c)
}

// ref resolves {{ref "component"}} for unit u: that component's index of the same version,
// by digest — published earlier in this run, or already complete in the target.
func (s *syncer) ref(u *unit, name string) (string, error) {
	if _, ok := s.cfg.Target.Layout(); ok {
		return "", fmt.Errorf("{{ref %q}}: component references need a registry target (BuildKit pulls the base from it)", name)
	}
	if d, ok := s.index(unitKey{u.app.App.Name, name, u.version.Version}); ok {
		return s.tgt.Ref(name) + "@" + d, nil
	}
	return "", fmt.Errorf("{{ref %q}}: %s %s is not published", name, name, u.version.Version)
}

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// annotations are the OCI labels of every image and the annotations of its index, plus
// archmirror's own naming the upstream.
func (s *syncer) annotations(app *config.App, c *config.Component, v discover.Version) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.version":  v.Version,
		"org.opencontainers.image.title":    c.Name,
		"org.opencontainers.image.source":   upstreamURL(app.Source),
		"io.archmirror.upstream.repository": upstreamURL(app.Source),
		"io.archmirror.upstream.version":    v.Version,
		"io.archmirror.upstream.ref":        v.Tag,
	}
	if commitSHA.MatchString(v.Commit) {
		a["org.opencontainers.image.revision"] = v.Commit
	}
	if !v.Published.IsZero() {
		a["org.opencontainers.image.created"] = v.Published.UTC().Format(time.RFC3339)
	}
	return a
}

// upstreamURL names an app's upstream for labels. It never carries credentials: the config's
// URLs are validated without them, and git URLs are stripped of any user info.
func upstreamURL(src config.Source) string {
	switch src.Kind() {
	case "github":
		base := "https://github.com"
		if src.API != "" && !strings.Contains(src.API, "api.github.com") {
			base = strings.TrimSuffix(strings.TrimSuffix(src.API, "/"), "/api/v3")
		}
		return base + "/" + src.GitHub
	case "gitlab":
		return "https://" + src.Host + "/" + src.GitLab
	case "git":
		if i := strings.Index(src.Git, "@"); i >= 0 && strings.Contains(src.Git[:i], "://") {
			return src.Git[:strings.Index(src.Git, "://")+3] + src.Git[i+1:]
		}
		return src.Git
	}
	return src.Registry
}

func (s *syncer) app(name string) *plan.App {
	for i := range s.apps {
		if s.apps[i].App.Name == name {
			return &s.apps[i]
		}
	}
	return nil
}

func component(a *config.App, name string) *config.Component {
	for _, c := range a.Components {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func version(a *plan.App, v string) discover.Version {
	for _, dv := range a.Discovery.Versions {
		if dv.Version == v {
			return dv
		}
	}
	return discover.Version{Version: v}
}

// convergeLatest moves each repository's latest once, after the batch, to the highest stable
// version of the window that is complete now (before this run or published by it) — so latest
// does not step through lower versions as they finish, a failed highest version leaves latest
// on the best complete one, and a run that stopped between tagging a version and moving latest
// is finished by the next one. Publish never moves latest backwards.
func (s *syncer) convergeLatest(ctx context.Context) {
	for i := range s.apps {
		a := &s.apps[i]
		if a.Err != nil {
			continue
		}
		for _, c := range a.App.Components {
			best := highestStable(a.Discovery.Versions, func(v string) bool {
				_, ok := s.index(unitKey{a.App.Name, c.Name, v})
				return ok
			})
			if best == "" {
				continue
			}
			here, err := s.pub.Latest(ctx, c.Name, best, a.App.Platforms)
			if err != nil {
				s.log.Warn("latest not updated", "repo", s.tgt.Ref(c.Name), "version", best, "err", err)
				continue
			}
			// Registries have no compare-and-swap: another run that completed a higher version
			// and moved latest to it between our read of latest and our write is overwritten
			// (a lost update). Its version tag was written before its latest, so a check made
			// after our write sees it complete: move latest on to it.
			for range 3 {
				higher := s.completedElsewhere(ctx, a, c, best)
				if higher == "" {
					break
				}
				s.log.Info("a higher version was completed by another run; latest follows it", "repo", s.tgt.Ref(c.Name), "version", higher, "ours", best)
				if _, err := s.pub.Latest(ctx, c.Name, higher, a.App.Platforms); err != nil {
					s.log.Warn("latest not updated", "repo", s.tgt.Ref(c.Name), "version", higher, "err", err)
					break
				}
				best, here = higher, false
			}
			for j := range s.units {
				if u := &s.units[j]; u.App == a.App.Name && u.Component == c.Name && u.Version == best {
					u.Latest = here
				}
			}
		}
	}
}

// completedElsewhere is the highest stable version of a's window above best that the target
// holds complete although this run did not see it so (another run published it meanwhile),
// "" for none. Usually there is no such version to look at: best is the top of the window.
func (s *syncer) completedElsewhere(ctx context.Context, a *plan.App, c *config.Component, best string) string {
	bv, err := semver.NewVersion(best)
	if err != nil {
		return ""
	}
	return highestStable(a.Discovery.Versions, func(v string) bool {
		if sv, err := semver.NewVersion(v); err != nil || !sv.GreaterThan(bv) {
			return false
		}
		if _, ok := s.index(unitKey{a.App.Name, c.Name, v}); ok {
			return false // ours: Latest had its chance at it
		}
		st, err := s.tgt.Inspect(ctx, c.Name, v)
		if err != nil {
			s.log.Warn("cannot check for a higher version", "repo", s.tgt.Ref(c.Name), "version", v, "err", err)
			return false
		}
		if !st.Exists {
			return false
		}
		for _, pl := range a.App.Platforms {
			if !slices.Contains(st.Platforms, pl.Normalize().String()) {
				return false
			}
		}
		return true
	})
}

func highestStable(vs []discover.Version, ok func(string) bool) string {
	var best *discover.Version
	for i, v := range vs {
		if v.Semver == nil || v.Semver.Prerelease() != "" || !ok(v.Version) {
			continue
		}
		if best == nil || v.Semver.GreaterThan(best.Semver) {
			best = &vs[i]
		}
	}
	if best == nil {
		return ""
	}
	return best.Version
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

// redactedError is err with the user info of the URLs in its message redacted
// (redact.Value); err is still inside it for errors.Is and errors.As.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redact.Value(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }
