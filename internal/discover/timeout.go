package discover

import (
	"net/http"
	"time"

	"github.com/archmirror/archmirror/internal/deadline"
)

// headerBound fails a request whose answer's headers do not come within d of its being sent.
// It sits under the retries and the host limit: it bounds one attempt on the wire. The error
// names the host ("api.github.com: no answer within 30s"); it is not retried.
func headerBound(d time.Duration, next http.RoundTripper) http.RoundTripper {
	return bound(next, deadline.Transport{Header: deadline.Limit{After: d, What: "no answer"}}, d)
}

// requestBound ends a request, body included, d after it started: retries, waits for a host
// slot and a body that trickles all count.
func requestBound(d time.Duration, next http.RoundTripper) http.RoundTripper {
	return bound(next, deadline.Transport{Request: deadline.Limit{After: d, What: "no answer"}}, d)
}

// bound is t over next, or next alone when d is no bound.
func bound(next http.RoundTripper, t deadline.Transport, d time.Duration) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if d <= 0 {
		return next
	}
	t.Next = next
	return &t
}
