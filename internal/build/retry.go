package build

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/archmirror/archmirror/internal/retry"
)

// RetryPush returns a Builder that builds a Spec again, under p (attempts and backoff), when b
// failed it with a TransientPush error: BuildKit's push has no retries of ours, so a registry
// that answered it 5xx or dropped it is asked again by building again, from BuildKit's cache.
// Each new attempt is logged to log and to the Spec's Log. The endpoints that died under the
// attempts (Result.Retried) add up.
func RetryPush(b Builder, p retry.Policy, log *slog.Logger) Builder {
	return BuilderFunc(func(ctx context.Context, s Spec) (Result, error) {
		var res Result
		var last error
		var retried []string
		attempt := 0
		err := p.Do(ctx, TransientPush, func() error {
			if attempt++; attempt > 1 {
				line, _, _ := strings.Cut(last.Error(), "\n")
				log.Warn("the push failed; building again", "job", s.JobID, "attempt", attempt, "err", line)
				if s.Log != nil {
					fmt.Fprintf(s.Log, "\n--- the push failed (%s); building again ---\n\n", line)
				}
			}
			res, last = b.Build(ctx, s)
			retried = append(retried, res.Retried...)
			return last
		})
		res.Retried = retried
		return res, err
	})
}
