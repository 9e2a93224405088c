package target

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency bounds InspectAll when the caller gives no bound.
const DefaultConcurrency = 8

// Request is one repo:tag to inspect.
type Request struct {
	Repo string
	Tag  string
}

// Result is the answer to one Request: its State, or the error that repo:tag alone had.
type Result struct {
	Request
	State State
	Err   error
}

// InspectAll inspects every request with at most concurrency at a time (DefaultConcurrency
// when concurrency < 1). Results are in request order; one repo:tag failing gives that
// Result an Err and does not stop the others. When ctx ends, the requests not yet started
// fail with its error.
func InspectAll(ctx context.Context, t Target, reqs []Request, concurrency int) []Result {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	out := make([]Result, len(reqs))
	var g errgroup.Group
	g.SetLimit(concurrency)
	for i, req := range reqs {
		out[i].Request = req
		if err := ctx.Err(); err != nil {
			out[i].Err = err
			continue
		}
		g.Go(func() error {
			out[i].State, out[i].Err = t.Inspect(ctx, req.Repo, req.Tag)
			return nil
		})
	}
	_ = g.Wait()
	return out
}
