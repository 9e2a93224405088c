package run

import (
	"context"
	"slices"

	"github.com/Masterminds/semver/v3"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/publish"
)

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

// highestStable is publish.Latest over a's window: the one latest policy.
func highestStable(vs []discover.Version, ok func(string) bool) string {
	window := make([]string, len(vs))
	for i, v := range vs {
		window[i] = v.Version
	}
	return publish.Latest(window, "", ok)
}
