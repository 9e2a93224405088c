package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/lease"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/target"
)

// leases are the app leases one sync holds: taken before discovery, released at the end.
type leases struct {
	held []HeldApp               // apps another run holds: left alone
	mine map[string]*lease.Lease // by app name
	log  *slog.Logger

	mu   sync.Mutex
	ctxs map[string]context.Context // by app: ended when its lease is lost
	stop []context.CancelFunc
}

// errLeaseLost ends an app's work when another run has taken its lease.
var errLeaseLost = errors.New("another run took over this app's lease")

// takeLeases takes the lease of every app of apps, in its first component's repository, a few
// at a time. An app whose lease another run holds is listed in held. One whose lease cannot be
// taken for another reason (a registry that refuses the write, say) is worked on without one,
// with a warning: the guarded writes keep the registry right either way; the lease only saves
// duplicated work.
func takeLeases(ctx context.Context, apps []*config.App, tgt target.Target, runID string, o SyncOptions) *leases {
	ls := &leases{mine: map[string]*lease.Lease{}, ctxs: map[string]context.Context{}, log: o.logger()}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	for _, app := range apps {
		if len(app.Components) == 0 {
			continue
		}
		g.Go(func() error {
			l, err := lease.Acquire(ctx, tgt, app.Components[0].Name, lease.Options{RunID: runID, TTL: o.LeaseTTL, Log: ls.log.With("app", app.Name)})
			mu.Lock()
			defer mu.Unlock()
			var held *lease.HeldError
			switch {
			case errors.As(err, &held):
				ls.held = append(ls.held, HeldApp{App: app.Name, Holder: held.Holder, Until: held.Until.UTC()})
				ls.log.Warn("app left alone: another run holds its lease", "app", app.Name, "holder", held.Holder, "until", held.Until)
			case err != nil:
				ls.log.Warn("working on the app without a lease", "app", app.Name, "err", err)
			default:
				ls.mine[app.Name] = l
			}
			return nil
		})
	}
	_ = g.Wait()
	return ls
}

// busy are the apps p has jobs for.
func busy(apps []plan.App, p plan.Plan) []*config.App {
	jobs := map[string]bool{}
	for _, j := range p.Jobs {
		jobs[j.App] = true
	}
	var out []*config.App
	for _, a := range apps {
		if jobs[a.App.Name] {
			out = append(out, a.App)
		}
	}
	return out
}

// drop is apps without the ones another run holds.
func (ls *leases) drop(apps []plan.App) []plan.App {
	held := map[string]bool{}
	for _, h := range ls.held {
		held[h.App] = true
	}
	var out []plan.App
	for _, a := range apps {
		if !held[a.App.Name] {
			out = append(out, a)
		}
	}
	return out
}

// context is ctx for the work on app: it ends, with errLeaseLost as its cause, when the app's
// lease is lost. The first call for an app makes it.
func (ls *leases) context(ctx context.Context, app string) context.Context {
	if ls == nil || ls.mine[app] == nil {
		return ctx
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if c, ok := ls.ctxs[app]; ok {
		return c
	}
	c, cancel := context.WithCancelCause(ctx)
	lost := ls.mine[app].Lost()
	go func() {
		select {
		case <-lost:
			ls.log.Error("stopping work on the app", "app", app, "err", errLeaseLost)
			cancel(fmt.Errorf("app %s: %w", app, errLeaseLost))
		case <-c.Done():
		}
	}()
	ls.ctxs[app] = c
	ls.stop = append(ls.stop, func() { cancel(nil) })
	return c
}

// release gives back every lease held.
func (ls *leases) release(ctx context.Context) {
	ls.mu.Lock()
	for _, stop := range ls.stop {
		stop()
	}
	ls.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls.mine {
		wg.Go(func() { l.Release(ctx) })
	}
	wg.Wait()
}
