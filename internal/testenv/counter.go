package testenv

import (
	"net/http"
	"sync/atomic"
)

// Counter is an http.RoundTripper that counts the requests it sends, for tests and benchmarks
// that hold a stage to a request budget.
type Counter struct {
	n    atomic.Int64
	Next http.RoundTripper // nil: http.DefaultTransport
}

// RoundTrip counts r and sends it on.
func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	next := c.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Count is the number of requests sent so far.
func (c *Counter) Count() int64 { return c.n.Load() }
