package testenv

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// Counter is an http.RoundTripper that counts the requests it sends, for tests and benchmarks
// that hold a stage to a request budget. It also counts writes (Writes) and keeps
// "METHOD /path" of each request, for tests that check which requests were sent (Requests).
type Counter struct {
	n, writes, sent atomic.Int64
	Next            http.RoundTripper // nil: http.DefaultTransport

	mu   sync.Mutex
	reqs []string
}

// RoundTrip counts r and sends it on.
func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.writes.Add(1)
	}
	if r.ContentLength > 0 {
		c.sent.Add(r.ContentLength)
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	next := c.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Count is the number of requests sent so far.
func (c *Counter) Count() int64 { return c.n.Load() }

// Writes is the number of requests sent so far that were not GET or HEAD: PUT, POST, PATCH,
// DELETE.
func (c *Counter) Writes() int64 { return c.writes.Load() }

// Sent is the number of request body bytes sent so far (by Content-Length).
func (c *Counter) Sent() int64 { return c.sent.Load() }

// Requests lists the requests sent so far, in order, as "METHOD /path" (no query).
func (c *Counter) Requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}
