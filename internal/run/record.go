package run

// A built job is recorded by tagging its platform image with StagingTag: a sync killed half-way
// resumes where it stopped, and the CI fan-out passes results from build to publish through the
// registry.

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/target"
)

// StagingPrefix starts the tags that record built jobs.
const StagingPrefix = "archmirror-build-"

// StagingTag is the tag that records the built image of one platform of one version of a
// component, in the component's repository: "archmirror-build-2.1.0-linux-arm64". It is never a
// version tag (versions start with a digit), and publish reads it; nothing else does.
func StagingTag(version string, p platform.Platform) string {
	return StagingPrefix + version + "-" + p.Slug()
}

// recordedBuilder is Result.Builder for a job found recorded: nothing was built.
const recordedBuilder = "recorded"

// recorder is a build.Builder decorator for the jobs of a plan: a job an earlier run (or a CI
// runner) built and recorded is not built again (its Result's Builder is "recorded"), and a job
// built is recorded. A Spec of no job of the plan is built and not recorded.
type recorder struct {
	next build.Builder
	tgt  target.Target
	jobs map[string]plan.Job // by ID
}

func newRecorder(next build.Builder, tgt target.Target, jobs []plan.Job) *recorder {
	r := &recorder{next: next, tgt: tgt, jobs: map[string]plan.Job{}}
	for _, j := range jobs {
		r.jobs[j.ID] = j
	}
	return r
}

func (r *recorder) Build(ctx context.Context, s build.Spec) (build.Result, error) {
	j, ok := r.jobs[s.JobID]
	if !ok {
		return r.next.Build(ctx, s)
	}
	rec, err := r.recorded(ctx, j)
	if err != nil {
		return build.Result{}, err
	}
	if rec.Exists {
		return build.Result{Digest: rec.Digest, Platform: s.Platform.String(), Builder: recordedBuilder}, nil
	}
	res, err := r.next.Build(ctx, s)
	if err != nil {
		return res, err
	}
	if err := r.record(ctx, j, res.Digest, rec.Digest); err != nil {
		return res, fmt.Errorf("built %s but could not record it: %w", res.Digest, err)
	}
	return res, nil
}

// recorded is what the target holds under job j's StagingTag, when it is an image of j's
// platform (else Exists is false).
func (r *recorder) recorded(ctx context.Context, j plan.Job) (target.State, error) {
	pl, err := platform.Parse(j.Platform)
	if err != nil {
		return target.State{}, err
	}
	st, err := r.tgt.Inspect(ctx, j.Component, StagingTag(j.Version, pl))
	if err != nil {
		return target.State{}, fmt.Errorf("%s: recorded build: %w", j.ID, err)
	}
	if st.Exists && !slices.Contains(st.Platforms, pl.String()) {
		st.Exists = false
	}
	return st, nil
}

// record tags the image job j built with its StagingTag, guarded by what the tag held before
// the build (was): a stale recording is replaced, a concurrent writer's is not lost silently.
func (r *recorder) record(ctx context.Context, j plan.Job, digest, was string) error {
	pl, err := platform.Parse(j.Platform)
	if err != nil {
		return err
	}
	d, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	return r.tgt.Tag(ctx, j.Component, StagingTag(j.Version, pl), d, was)
}
