package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
)

// SyncOptions tune a sync. The zero value builds with BuildKit, two jobs at a time.
type SyncOptions struct {
	Options
	Parallel   int                                // jobs built at once; default 2
	PerBuilder int                                // jobs at once on one BuildKit endpoint; default Parallel
	DryRun     bool                               // plan only
	LogDir     string                             // where each job's build log goes; default <cache.dir>/logs
	NewBuilder func(nd config.Node) build.Builder // default build.ForNode
	Progress   Progress                           // shown each job's start, steps and end; may be nil
	// Signer signs the attestations; default Signer(cfg.Sign). With sign: off in the config and
	// no Signer, nothing is attested.
	Signer *sign.Signer
	// LeaseTTL is how long an app's lease lasts unrenewed; default lease.DefaultTTL.
	LeaseTTL time.Duration
	// PushRetry is how a job whose push failed on the registry's side is built again (from
	// BuildKit's cache): default 3 attempts in all, backing off from 2s.
	PushRetry retry.Policy
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

// newSyncer sets up what building and publishing need: the publisher, the builders' factory
// (BuildKit with the target's credentials), the log directory of this run.
// prepare is how every entry point but Sync (which takes leases in between) starts: it surveys
// (discovers, inspects, plans), puts the plan in rep, and assembles the syncer on it.
func prepare(ctx context.Context, cfg *config.Config, o SyncOptions, rep *Report) (*syncer, error) {
	tgt, apps, p, err := survey(ctx, cfg, o.Options)
	rep.Plan = p
	if err != nil {
		return nil, err
	}
	return newSyncer(cfg, tgt, apps, p, o, rep.Started)
}

func newSyncer(cfg *config.Config, tgt target.Target, apps []plan.App, p plan.Plan, o SyncOptions, started time.Time) (*syncer, error) {
	s := &syncer{cfg: cfg, tgt: tgt, o: o, pub: publish.New(tgt, publish.WithLogger(o.logger())), apps: apps, log: o.logger(),
		indexes: completeIndexes(p), built: map[string]built{}, runID: newRunID(started)}
	if s.o.Parallel < 1 {
		s.o.Parallel = 2
	}
	if s.o.PushRetry.Attempts < 1 {
		s.o.PushRetry.Attempts = 3
	}
	if s.o.PushRetry.Base <= 0 {
		s.o.PushRetry.Base = 2 * time.Second
	}
	if s.o.NewBuilder == nil {
		kc, err := target.BuilderKeychain(cfg.Target, authn.DefaultKeychain)
		if err != nil {
			return nil, err
		}
		s.o.NewBuilder = func(nd config.Node) build.Builder { return build.ForNode(nd, build.WithKeychain(kc)) }
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
	build   build.Builder // every job's way through recording, --parallel, logs, push retries and the nodes
}

// index returns the digest of a complete index for k, if the target has one.
func (s *syncer) index(k unitKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.indexes[k]
	return d, ok
}

// newRunID names a run: its start time and a random suffix.
func newRunID(started time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "archmirror-" + started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
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
