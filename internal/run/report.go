package run

import (
	"time"

	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/publish"
)

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
