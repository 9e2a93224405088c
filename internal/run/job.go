package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/redact"
)

// builder is the chain every job of a run goes through: recorded jobs are not built again (and
// built ones recorded), at most parallel build at once, each with its log file and progress,
// a failed push built again under pushRetry, on the pool's nodes.
func (s *syncer) builder(p plan.Plan, nodes build.Builder, parallel int) build.Builder {
	return newRecorder(build.Limit(s.observed(build.RetryPush(nodes, s.o.PushRetry, s.log)), parallel), s.tgt, p.Jobs)
}

// runJob renders job j's Spec and builds it.
func (s *syncer) runJob(ctx context.Context, u *unit, j plan.Job, refs config.RefFunc) JobResult {
	r := JobResult{Job: j}
	spec, err := s.spec(u, j, refs)
	if err != nil {
		if s.o.Progress != nil {
			s.o.Progress.JobStarted(j.ID)
		}
		return s.failed(r, err)
	}
	res, err := s.build.Build(ctx, spec)
	r.Builder, r.Retried, r.Seconds = res.Builder, res.Retried, res.Duration.Seconds()
	if res.Duration > 0 { // observed: it has a log
		r.Log = s.logPath(j.ID)
	}
	switch {
	case errors.Is(err, build.ErrNotStarted):
		r.Status, r.Error = JobSkipped, "run stopped: "+ctx.Err().Error()
		return r
	case err != nil:
		return s.failed(r, err)
	case res.Builder == recordedBuilder:
		r.Status, r.Digest = JobBuilt, res.Digest
		return r
	}
	r.Status, r.Digest = JobBuilt, res.Digest
	s.mu.Lock()
	s.built[j.ID] = built{spec: spec, res: res, builder: r.Builder}
	s.mu.Unlock()
	if s.o.Progress != nil {
		s.o.Progress.JobDone(j.ID, string(JobBuilt)+" "+res.Digest, nil)
	}
	s.log.Info("built", "job", j.ID, "digest", res.Digest, "seconds", fmt.Sprintf("%.1f", r.Seconds))
	return r
}

// failed is r failed with err. r.Error is the cause alone: the result names the job (the
// builder's errors start with its ID, for callers that have nothing else to name it by). A
// builder's error may name the git context, whose user name may be a token: the result, the
// log and the progress line have it redacted.
func (s *syncer) failed(r JobResult, err error) JobResult {
	err = redactedError{err}
	r.Status, r.Error = JobFailed, strings.TrimPrefix(err.Error(), r.ID+": ")
	s.log.Error("job failed", "job", r.ID, "err", err, "log", r.Log)
	if s.o.Progress != nil {
		s.o.Progress.JobDone(r.ID, string(JobFailed), err)
	}
	return r
}

// logPath is where job id's build log goes.
func (s *syncer) logPath(id string) string {
	return filepath.Join(s.logDir, strings.ReplaceAll(id, "/", "_")+".log")
}

// observed is a build.Builder decorator: each build has its log file (Spec.Log) and tells
// Progress it started and its steps; Result.Duration is the whole of it, retries included.
func (s *syncer) observed(next build.Builder) build.Builder {
	return build.BuilderFunc(func(ctx context.Context, spec build.Spec) (build.Result, error) {
		start := time.Now()
		if s.o.Progress != nil {
			s.o.Progress.JobStarted(spec.JobID)
			spec.Step = func(step string) { s.o.Progress.JobStep(spec.JobID, step) }
		}
		res, err := s.logged(ctx, next, spec)
		res.Duration = time.Since(start)
		return res, err
	})
}

// logged builds spec with its log in its own file. The log is the user's alone (0700/0600,
// like the history database): a build's output can show what a private registry or
// repository holds.
func (s *syncer) logged(ctx context.Context, next build.Builder, spec build.Spec) (build.Result, error) {
	if err := os.MkdirAll(s.logDir, 0o700); err != nil {
		return build.Result{}, err
	}
	lf, err := os.OpenFile(s.logPath(spec.JobID), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return build.Result{}, err
	}
	defer lf.Close()
	spec.Log = lf
	return next.Build(ctx, spec)
}

// redactedError is err with the user info of the URLs in its message redacted
// (redact.Value); err is still inside it for errors.Is and errors.As.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redact.Value(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }
