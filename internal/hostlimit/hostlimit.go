// Package hostlimit bounds the requests a process has in flight to each host, as an
// http.RoundTripper decorator: the upstream APIs ask clients not to flood them (GitHub: no
// concurrent requests), and a registry answers a burst with 429s.
package hostlimit

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// Limit bounds the requests in flight to each host. It is meant to be shared by every client
// of a process that talks to the same hosts. A request holds its slot from the moment
// it is sent until its response headers arrive or it fails, never while its body is read: a
// caller holding one open body can always send another request.
type Limit struct {
	n       int
	mu      sync.Mutex
	slots   map[string]chan struct{}
	waiting map[string]int // requests queued for a slot, by host
}

// New returns a limit of n requests in flight per host; n < 1 is no limit.
func New(n int) *Limit {
	return &Limit{n: n, slots: map[string]chan struct{}{}, waiting: map[string]int{}}
}

// Transport returns next (nil: http.DefaultTransport) with l's bound. Every hop of a redirect
// is a request of its own, to its own host.
func (l *Limit) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if l == nil || l.n < 1 {
		return next
	}
	return &limitTransport{l: l, next: next}
}

type limitTransport struct {
	l    *Limit
	next http.RoundTripper
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	release, err := t.l.acquire(req.Context(), strings.ToLower(req.URL.Host))
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on errors
		}
		return nil, err
	}
	defer release() // the headers are here (or the request failed): the body streams freely
	return t.next.RoundTrip(req)
}

// acquire waits for a slot to host, or for ctx to end.
func (l *Limit) acquire(ctx context.Context, host string) (release func(), err error) {
	l.mu.Lock()
	slot, ok := l.slots[host]
	if !ok {
		slot = make(chan struct{}, l.n)
		l.slots[host] = slot
	}
	select {
	case slot <- struct{}{}:
		l.mu.Unlock()
		return func() { <-slot }, nil
	default:
	}
	l.waiting[host]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.waiting[host]--; l.waiting[host] == 0 {
			delete(l.waiting, host)
		}
		l.mu.Unlock()
	}()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Queued is how many requests to host wait for a slot.
func (l *Limit) Queued(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting[strings.ToLower(host)]
}
