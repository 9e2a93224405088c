package serve

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed templates/status.html
var pageFS embed.FS

// pageTemplate is the status page: parsed once, never changed afterwards. html/template escapes
// every value by its context (text, attribute, URL), so upstream strings cannot inject markup.
var pageTemplate = template.Must(template.ParseFS(pageFS, "templates/status.html"))

// RenderStatus writes the status page for st: a self-contained HTML document (inline CSS, no
// scripts, nothing fetched from elsewhere) that reloads itself every 30 seconds. Times are
// shown in UTC (RFC 3339) and relative to st.Now (the current time when zero).
//
// Elements carry stable hooks for tests and scrapers: #schedule, #last-run, #next-run,
// #running-run and #config-error (data-run-id, data-status); per app a
// <table class="app" data-app=NAME> whose rows have data-version, data-component, data-status
// (and data-latest="true" on the latest version) and whose cells have data-platform,
// data-state and a title with the digest or the error; #failures holds one
// <details class="failure" data-kind=job|app|publish> per failure of the last run.
func RenderStatus(w io.Writer, st Status) error {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, newPageView(st)); err != nil {
		return fmt.Errorf("render status page: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// pageView is Status shaped for the template: every decision (which columns, which class,
// what a title says, how long ago) is made here, so the template only lays things out.
type pageView struct {
	Now         pageStamp
	Schedule    string
	ConfigError string
	LastRun     *pageRun
	Running     *pageRun
	NextRun     pageStamp
	Behind      int // over every app, for the page title
	Apps        []pageApp
	Failures    []pageFailure
}

// pageStamp is a point in time as the page shows it.
type pageStamp struct {
	Zero bool
	UTC  string // RFC 3339
	Rel  string // "3m ago", "in 2h 10m"
}

type pageRun struct {
	ID, Link, Status, Trigger string
	Queued, Started           pageStamp
	When                      pageStamp // when it finished (else started, else was queued)
	Duration                  string
	Summary                   string
	Error                     string
}

type pageApp struct {
	Name, Latest, LastError string
	Behind                  int
	Platforms               []string
	MultiComponent          bool // a component column is shown
	Columns                 int
	Rows                    []pageRow
}

type pageRow struct {
	Version, Component, Tag string
	TagTitle                string // repo:tag@digest
	Latest                  bool
	Status, StatusClass     string
	Cells                   []pageCell
}

type pageCell struct {
	Platform, State, Class string
	Title                  string // the digest, or the error
	Mark                   string
	Short                  string // the digest's first 12 hex digits, on complete cells
}

type pageFailure struct {
	Kind      string // job, app, publish
	ID        string
	Job, App  string
	FirstLine string
	More      string // the whole error, when it has more than one line
	Log       string
}

func newPageView(st Status) pageView {
	now := st.Now
	if now.IsZero() {
		now = time.Now()
	}
	v := pageView{
		Now:         pageStamp{UTC: now.UTC().Format(time.RFC3339)},
		Schedule:    st.Schedule,
		ConfigError: st.ConfigError,
		NextRun:     newPageStamp(now, st.NextRun),
		LastRun:     newPageRun(now, st.LastRun),
		Running:     newPageRun(now, st.Running),
	}
	for _, a := range st.Apps {
		v.Apps = append(v.Apps, newPageApp(a))
		v.Behind += a.Behind
	}
	if st.LastRun != nil {
		v.Failures = pageFailures(*st.LastRun)
	}
	return v
}

func newPageStamp(now, t time.Time) pageStamp {
	if t.IsZero() {
		return pageStamp{Zero: true}
	}
	return pageStamp{UTC: t.UTC().Format(time.RFC3339), Rel: pageRelative(now, t)}
}

func newPageRun(now time.Time, r *Run) *pageRun {
	if r == nil {
		return nil
	}
	p := &pageRun{
		ID:      r.ID,
		Link:    "/api/v1/runs/" + url.PathEscape(r.ID),
		Status:  r.Status,
		Trigger: r.Trigger,
		Queued:  newPageStamp(now, r.Queued),
		Started: pageStamp{Zero: true},
		When:    newPageStamp(now, r.Queued),
		Error:   r.Error,
		Summary: fmt.Sprintf("%d built, %d failed, %d skipped; %d published, %d repaired, %d attested",
			r.Summary.Built, r.Summary.Failed, r.Summary.Skipped, r.Summary.Published, r.Summary.Repaired, r.Summary.Attested),
	}
	if r.Started != nil {
		p.Started = newPageStamp(now, *r.Started)
		p.When = p.Started
	}
	if r.Finished != nil {
		p.When = newPageStamp(now, *r.Finished)
		if r.Started != nil {
			p.Duration = pageDuration(r.Finished.Sub(*r.Started))
		}
	}
	return p
}

func newPageApp(a App) pageApp {
	p := pageApp{Name: a.Name, Latest: a.Latest, Behind: a.Behind, LastError: a.LastError, Platforms: a.Platforms}
	if len(p.Platforms) == 0 { // not said: every platform some cell has
		for _, v := range a.Versions {
			for _, c := range v.Components {
				for pl := range c.Cells {
					if !slices.Contains(p.Platforms, pl) {
						p.Platforms = append(p.Platforms, pl)
					}
				}
			}
		}
		slices.Sort(p.Platforms)
	}
	for _, v := range a.Versions {
		p.MultiComponent = p.MultiComponent || len(v.Components) > 1
	}
	p.Columns = 3 + len(p.Platforms)
	if p.MultiComponent {
		p.Columns++
	}
	for _, v := range a.Versions {
		for _, c := range v.Components {
			row := pageRow{
				Version:     v.Version,
				Component:   c.Name,
				Tag:         v.Tag,
				TagTitle:    pageRef(c.Repo, v.Tag, c.Digest),
				Latest:      v.Latest,
				Status:      c.Status,
				StatusClass: pageClass(c.Status, "complete", "incomplete", "missing"),
			}
			for _, pl := range p.Platforms {
				row.Cells = append(row.Cells, newPageCell(pl, c.Cells[pl]))
			}
			p.Rows = append(p.Rows, row)
		}
	}
	return p
}

func newPageCell(platform string, c Cell) pageCell {
	if c.State == "" { // no cell for this platform: nothing in the index
		c.State = CellMissing
	}
	p := pageCell{Platform: platform, State: c.State, Class: pageClass(c.State, CellComplete, CellMissing, CellFailed)}
	var title []string
	for _, s := range []string{c.Error, c.Digest} {
		if s != "" {
			title = append(title, s)
		}
	}
	if len(title) == 0 {
		title = append(title, platform+": "+c.State)
	}
	p.Title = strings.Join(title, "\n")
	switch c.State {
	case CellComplete:
		p.Mark = "✓"
		if _, hex, ok := strings.Cut(c.Digest, ":"); ok && len(hex) >= 12 {
			p.Short = hex[:12]
		}
	case CellFailed:
		p.Mark = "✗"
	case CellMissing:
		p.Mark = "–"
	default:
		p.Mark = "?"
	}
	return p
}

// pageClass returns s when it is one of the known values (the CSS has a rule for each), else
// "other".
func pageClass(s string, known ...string) string {
	if slices.Contains(known, s) {
		return s
	}
	return "other"
}

func pageRef(repo, tag, digest string) string {
	ref := repo
	if tag != "" {
		if ref != "" {
			ref += ":"
		}
		ref += tag
	}
	if digest != "" {
		if ref != "" {
			ref += "@"
		}
		ref += digest
	}
	return ref
}

// pageFailures lists what failed in a run: apps that could not be discovered or inspected,
// failed builds, failed publications.
func pageFailures(r Run) []pageFailure {
	var out []pageFailure
	add := func(f pageFailure, err string) {
		err = strings.TrimSpace(err)
		first, _, multi := strings.Cut(err, "\n")
		f.FirstLine = strings.TrimSpace(first)
		if multi {
			f.More = err
		}
		out = append(out, f)
	}
	for _, a := range r.Apps {
		add(pageFailure{Kind: "app", ID: a.App, App: a.App}, a.Error)
	}
	for _, j := range r.Jobs {
		if j.Status == Failed {
			add(pageFailure{Kind: "job", ID: j.ID, Job: j.ID, App: j.App, Log: strings.TrimRight(j.LogExcerpt, "\n")}, j.Error)
		}
	}
	for _, u := range r.Units {
		if u.Status == Failed || u.Error != "" {
			add(pageFailure{Kind: "publish", ID: u.App + "/" + u.Component + "/" + u.Version, App: u.App}, u.Error)
		}
	}
	return out
}

// pageRelative says when t is from now's point of view: "now", "3m ago", "in 2h 10m".
func pageRelative(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d < 0:
		return pageSpan(-d) + " ago"
	default:
		return "in " + pageSpan(d)
	}
}

// pageSpan is a coarse length of time, at most two units: "45s", "3m", "2h 10m", "3d 4h".
func pageSpan(d time.Duration) string {
	const day = 24 * time.Hour
	two := func(a, b int, ua, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < day:
		return two(int(d/time.Hour), int(d%time.Hour/time.Minute), "h", "m")
	default:
		return two(int(d/day), int(d%day/time.Hour), "d", "h")
	}
}

// pageDuration is how long a run took: "0.8s", "45s", "3m 12s", "1h 5m".
func pageDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		return pageSpan(d)
	}
}
