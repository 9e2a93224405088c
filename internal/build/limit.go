package build

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotStarted is what a Build returns (errors.Is) when its context ended before the build
// could start: nothing was built, nothing failed.
var ErrNotStarted = errors.New("not started")

// Limit returns a Builder that runs at most n builds of b at once; the others wait for a slot,
// or until their context ends (ErrNotStarted).
func Limit(b Builder, n int) Builder {
	return &limit{next: b, slots: make(chan struct{}, max(n, 1))}
}

type limit struct {
	next  Builder
	slots chan struct{}
}

func (l *limit) Build(ctx context.Context, s Spec) (Result, error) {
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%w: %w", ErrNotStarted, ctx.Err())
	}
	return l.next.Build(ctx, s)
}
