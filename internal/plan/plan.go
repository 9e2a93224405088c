// Package plan decides what must be built. It is pure: given what upstream has (discovery) and
// what the target holds (inspection), it returns the jobs — one per version × component ×
// platform that is missing — in a deterministic order, with their dependencies.
package plan

import (
	"fmt"
	"slices"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/target"
)

// Status is the state of one version of one component in the target.
type Status string

const (
	Missing    Status = "missing"    // no tag
	Incomplete Status = "incomplete" // the index lacks a platform
	Complete   Status = "complete"   // every configured platform is there
)

// Job builds one platform of one component of one version. Its JSON form is a row of the
// GitHub Actions matrix: job, app, component, version, platform, runner and latest are the
// contract; the rest may grow.
type Job struct {
	ID        string   `json:"job"`
	App       string   `json:"app"`
	Component string   `json:"component"`
	Version   string   `json:"version"`
	Platform  string   `json:"platform"`
	Runner    string   `json:"runner"`
	Latest    bool     `json:"latest"`
	Tag       string   `json:"tag"`   // the upstream tag the version comes from
	Repo      string   `json:"repo"`  // the component's repository in the target
	Stage     int      `json:"stage"` // 0 for jobs without dependencies; a job's needs are in earlier stages
	Needs     []string `json:"needs,omitempty"`
	Reason    Status   `json:"reason"` // missing or incomplete
}

// JobID is the stable identifier of a job: app/component/version/os-arch.
func JobID(app, component, version, platformSlug string) string {
	return fmt.Sprintf("%s/%s/%s/%s", app, component, version, platformSlug)
}

// Key names one version of one component.
type Key struct{ Component, Version string }

// App is what the planner knows about one app: its discovery and the target's state, or the
// error that stopped either.
type App struct {
	App       *config.App
	Discovery discover.Result
	States    map[Key]target.State
	Repos     map[string]string // component → repository reference in the target
	Err       error
}

// Plan is the planner's answer.
type Plan struct {
	Jobs []Job       `json:"jobs"`
	Apps []AppReport `json:"apps"`
}

// AppReport is one app's part of the plan, for people and for --json.
type AppReport struct {
	Name     string          `json:"name"`
	Latest   string          `json:"latest,omitempty"`
	Versions []VersionReport `json:"versions"`
	Skipped  []discover.Skip `json:"skipped,omitempty"`
	Error    string          `json:"error,omitempty"`
	// RateLimit is what the upstream API last said of its rate limit, when it said anything.
	RateLimit *discover.RateLimit `json:"rate_limit,omitempty"`
}

// VersionReport is one version of an app across its components.
type VersionReport struct {
	Version    string            `json:"version"`
	Tag        string            `json:"tag"`
	Latest     bool              `json:"latest,omitempty"`
	Components []ComponentReport `json:"components"`
}

// ComponentReport is the target's state of one component of one version.
type ComponentReport struct {
	Component string   `json:"component"`
	Repo      string   `json:"repo"`
	Status    Status   `json:"status"`
	Digest    string   `json:"digest,omitempty"`
	Present   []string `json:"present,omitempty"`
	Missing   []string `json:"missing,omitempty"`
	// Digests are the present platforms' manifest digests.
	Digests map[string]string `json:"digests,omitempty"`
}

// Failed reports whether any app could not be discovered or inspected.
func (p Plan) Failed() bool {
	for _, a := range p.Apps {
		if a.Error != "" {
			return true
		}
	}
	return false
}

// Make computes the plan. runner labels the CI runner of a platform.
func Make(apps []App, runner func(platform string) string) Plan {
	var p Plan
	for _, a := range apps {
		rep := AppReport{Name: a.App.Name, Latest: a.Discovery.HighestStable, Skipped: a.Discovery.Skipped, RateLimit: a.Discovery.RateLimit}
		if a.Err != nil {
			rep.Error = a.Err.Error()
			p.Apps = append(p.Apps, rep)
			continue
		}
		order := componentOrder(a.App.Components)
		var window []string
		for _, v := range a.Discovery.Versions {
			window = append(window, v.Version)
		}
		latest := publish.Latest(window, "", nil)
		for _, v := range a.Discovery.Versions {
			vr := VersionReport{Version: v.Version, Tag: v.Tag, Latest: latest != "" && v.Version == latest}
			jobsOf := map[string][]string{} // component → this version's job IDs
			stageOf := map[string]int{}
			for _, comp := range order {
				st := a.States[Key{comp.Name, v.Version}]
				cr, missing := classify(comp.Name, a.Repos[comp.Name], st, a.App.Platforms)
				vr.Components = append(vr.Components, cr)

				deps, _ := comp.Dependencies() // validated at load
				var needs []string
				stage := 0
				for _, d := range deps {
					needs = append(needs, jobsOf[d]...)
					if len(jobsOf[d]) > 0 {
						stage = max(stage, stageOf[d]+1)
					}
				}
				slices.Sort(needs)
				stageOf[comp.Name] = stage
				for _, pl := range missing {
					j := Job{
						ID:  JobID(a.App.Name, comp.Name, v.Version, pl.Slug()),
						App: a.App.Name, Component: comp.Name, Version: v.Version, Tag: v.Tag,
						Platform: pl.String(), Runner: runner(pl.String()), Latest: vr.Latest, Repo: cr.Repo,
						Stage: stage, Needs: needs, Reason: cr.Status,
					}
					jobsOf[comp.Name] = append(jobsOf[comp.Name], j.ID)
					p.Jobs = append(p.Jobs, j)
				}
			}
			rep.Versions = append(rep.Versions, vr)
		}
		p.Apps = append(p.Apps, rep)
	}
	return p
}

func classify(component, repo string, st target.State, want []platform.Platform) (ComponentReport, []platform.Platform) {
	var missing []platform.Platform
	cr := ComponentReport{Component: component, Repo: repo, Status: Missing}
	present := map[string]bool{}
	if st.Exists {
		cr.Digest = st.Digest
		cr.Present = st.Platforms
		cr.Digests = st.Digests
		for _, p := range st.Platforms {
			present[p] = true
		}
	}
	for _, w := range want {
		if !present[w.String()] {
			cr.Missing = append(cr.Missing, w.String())
			missing = append(missing, w)
		}
	}
	switch {
	case !st.Exists:
	case len(cr.Missing) == 0:
		cr.Status = Complete
	default:
		cr.Status = Incomplete
	}
	return cr, missing
}

// componentOrder puts every component after the ones it depends on, otherwise keeping file order.
func componentOrder(comps []*config.Component) []*config.Component {
	done := map[string]bool{}
	var out []*config.Component
	for len(out) < len(comps) {
		progressed := false
		for _, c := range comps {
			if done[c.Name] {
				continue
			}
			deps, _ := c.Dependencies()
			ready := true
			for _, d := range deps {
				ready = ready && done[d]
			}
			if ready {
				done[c.Name] = true
				out = append(out, c)
				progressed = true
			}
		}
		if !progressed { // a cycle: the loader rejects these, keep the rest in file order
			for _, c := range comps {
				if !done[c.Name] {
					done[c.Name] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}
