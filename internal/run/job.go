package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/attest/provenance"
	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/retry"
)

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
				s.log.Warn("the push failed; building again", "job", j.ID, "attempt", pushes+1, "err", firstLine(err.Error()))
				fmt.Fprintf(lf, "\n--- the push failed (%s); building again ---\n\n", firstLine(err.Error()))
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
		s.log.Warn("BuildKit node died during a build; retrying on another node", "job", j.ID, "node", n.addr, "err", firstLine(err.Error()))
		fmt.Fprintf(lf, "\n--- %s stopped answering (%s); building again on another node ---\n\n", n.addr, firstLine(err.Error()))
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

// redactedError is err with the user info of the URLs in its message redacted
// (provenance.RedactValue); err is still inside it for errors.Is and errors.As.
type redactedError struct{ err error }

func (e redactedError) Error() string { return provenance.RedactValue(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }
