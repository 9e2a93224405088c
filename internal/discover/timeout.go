package discover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// timeoutError is a peer that did not answer in time. It names the host, and it is not a
// net.Error: the retry policies do not try a stalled peer again.
type timeoutError struct {
	host string
	d    time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s: no answer within %s", e.host, e.d) }

// headerBound fails a request whose answer's headers do not come within d of its being sent.
// It sits under the retries and the host limit: it bounds one attempt on the wire.
func headerBound(d time.Duration, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if d <= 0 {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		cause := &timeoutError{host: req.URL.Host, d: d}
		ctx, cancel := context.WithCancelCause(req.Context())
		timer := time.AfterFunc(d, func() { cancel(cause) })
		resp, err := next.RoundTrip(req.WithContext(ctx))
		if !timer.Stop() { // it fired: whatever came back came too late
			if err == nil {
				resp.Body.Close()
			}
			return nil, cause
		}
		if err != nil {
			cancel(nil)
			return nil, err
		}
		resp.Body = &boundBody{rc: resp.Body, ctx: ctx, cause: cause, cancel: func() { cancel(nil) }}
		return resp, nil
	})
}

// requestBound ends a request, body included, d after it started: retries, waits for a host
// slot and a body that trickles all count.
func requestBound(d time.Duration, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if d <= 0 {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		cause := &timeoutError{host: req.URL.Host, d: d}
		ctx, cancel := context.WithTimeoutCause(req.Context(), d, cause)
		resp, err := next.RoundTrip(req.WithContext(ctx))
		if err != nil {
			defer cancel()
			if context.Cause(ctx) == cause && req.Context().Err() == nil {
				return nil, cause
			}
			return nil, err
		}
		resp.Body = &boundBody{rc: resp.Body, ctx: ctx, cause: cause, cancel: cancel}
		return resp, nil
	})
}

// boundBody is an answer's body under a deadline: an error its deadline caused is that
// deadline's error, and closing it releases the deadline.
type boundBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cause  error
	cancel func()
}

func (b *boundBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && context.Cause(b.ctx) == b.cause {
		err = b.cause
	}
	return n, err
}

func (b *boundBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}
