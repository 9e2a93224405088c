package serve

import (
	"time"
)

// Run statuses.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"    // the run ended, and some app, job, publication or attestation failed
	Cancelled = "cancelled" // stopped by shutdown
)

// Triggers: what started a run.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
)

// Request is what a run is asked to do: the seeds' manual inputs. Zero values mean the config's.
type Request struct {
	Apps        []string `json:"apps,omitempty"`         // only these apps
	MaxVersions int      `json:"max_versions,omitempty"` // override versions.max of every app
	Platforms   []string `json:"platforms,omitempty"`    // override the platforms of every app
}

// Run is one sync the service ran or will run, as the API shows it and the history keeps it:
// its summary, and what it did in detail.
type Run struct {
	RunSummary
	Jobs  []Job      `json:"jobs,omitempty"`
	Units []Unit     `json:"units,omitempty"`
	Apps  []AppError `json:"app_errors,omitempty"`
}

// RunSummary is a run as GET /api/v1/runs lists it: a Run without its jobs, publications and
// app errors (GET /api/v1/runs/{id} has them), in the same JSON shape.
type RunSummary struct {
	ID       string     `json:"id"` // sortable by queue time: "20261123T133031Z-1a2b3c4d"
	Trigger  string     `json:"trigger"`
	Request  Request    `json:"request"`
	Status   string     `json:"status"`
	Queued   time.Time  `json:"queued"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	Error    string     `json:"error,omitempty"` // what stopped the whole run, or the failures in one line
	Summary  Summary    `json:"summary"`
}

// Summarize is r's summary.
func Summarize(r Run) RunSummary { return r.RunSummary }

// Summary counts what a run did.
type Summary struct {
	Built, Failed, Skipped int
	Published, Repaired    int
	Attested               int // versions that got bundles
}

// Job is one build of a run.
type Job struct {
	ID         string  `json:"job"`
	App        string  `json:"app"`
	Component  string  `json:"component"`
	Version    string  `json:"version"`
	Platform   string  `json:"platform"`
	Status     string  `json:"status"` // built, failed, skipped
	Digest     string  `json:"digest,omitempty"`
	Builder    string  `json:"builder,omitempty"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
	LogExcerpt string  `json:"log_excerpt,omitempty"` // the end of a failed job's build log
}

// Unit is one publication of a run.
type Unit struct {
	App       string `json:"app"`
	Component string `json:"component"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Latest    bool   `json:"latest,omitempty"`
	Error     string `json:"error,omitempty"`
}

// AppError is an app that could not be discovered or inspected in a run.
type AppError struct {
	App   string `json:"app"`
	Error string `json:"error"`
}

// App is one app's state in the target, as GET /api/v1/apps and the status page show it.
type App struct {
	Name      string    `json:"name"`
	Platforms []string  `json:"platforms"`
	Latest    string    `json:"latest,omitempty"` // the highest stable upstream version of the window
	Behind    int       `json:"behind"`           // versions of the window not complete in the target
	Versions  []Version `json:"versions"`
	LastError string    `json:"last_error,omitempty"` // the app's error, or its latest failed job's, in the last run
}

// Version is one version of an app, each of its components with one cell per platform.
type Version struct {
	Version    string      `json:"version"`
	Tag        string      `json:"tag"`
	Latest     bool        `json:"latest,omitempty"`
	Components []Component `json:"components"`
}

// Component is one component of a version.
type Component struct {
	Name   string          `json:"name"`
	Repo   string          `json:"repo"`
	Status string          `json:"status"` // complete, incomplete, missing
	Digest string          `json:"digest,omitempty"`
	Cells  map[string]Cell `json:"platforms"` // by platform
}

// Cell states.
const (
	CellComplete = "complete"
	CellMissing  = "missing"
	CellFailed   = "failed"
)

// Cell is one platform of one component of one version.
type Cell struct {
	State  string `json:"state"`
	Digest string `json:"digest,omitempty"` // the index's entry for the platform, when there is one
	Error  string `json:"error,omitempty"`  // why the last run's build failed
}

// Status is everything the status page shows.
type Status struct {
	Now         time.Time
	Apps        []App
	Running     *Run // nil when idle
	LastRun     *Run // the last finished run
	NextRun     time.Time
	Schedule    string // the cron spec and time zone, for display
	ConfigError string // a reload that was refused, and why; "" when the config in use is the file's
}
