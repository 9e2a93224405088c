// Package retry is archmirror's one retry policy, as an http.RoundTripper decorator: the registry
// target and the upstream sources wrap their transports with it, and nothing else loops.
//
// A request is retried only when doing it twice is harmless: GET, HEAD, PUT and DELETE (a
// manifest or tag PUT writes the same bytes again), with a body it can send again
// (Request.GetBody). POST and PATCH — blob upload sessions — are not: a failed upload is
// started over by the caller, never resumed half-way by a transport that cannot know the
// session's state: Do runs such an operation again from its start. Retried: connection errors (reset, refused, unexpected EOF, timeouts) and
// the statuses 429, 500, 502, 503 and 504. The wait is the server's Retry-After when it gives
// one — never less, up to MaxWait; a server asking for more is answered at once with its
// response, which the caller reports — else exponential backoff with full jitter.
package retry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Policy says how often and how long to retry.
type Policy struct {
	Attempts int           // tries in all, the first included; default 5
	Base     time.Duration // the first backoff; default 250ms
	MaxDelay time.Duration // the largest backoff; default 8s
	MaxWait  time.Duration // the longest Retry-After honoured; default 2m
	// Statuses are the response codes retried; default 429, 500, 502, 503, 504. Sources that
	// handle rate limits themselves (GitHub's 403 and 429) leave 429 out.
	Statuses []int
	// Sleep waits d or until ctx ends; default a timer. Tests make it instant.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Default is the policy of the registry target.
var Default = Policy{}

func (p Policy) withDefaults() Policy {
	if p.Attempts < 1 {
		p.Attempts = 5
	}
	if p.Base <= 0 {
		p.Base = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 8 * time.Second
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 2 * time.Minute
	}
	if p.Statuses == nil {
		p.Statuses = []int{http.StatusTooManyRequests, 500, 502, 503, 504}
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	return p
}

// Transport returns next with p's retries.
func (p Policy) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{p: p.withDefaults(), next: next}
}

type transport struct {
	p    Policy
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !idempotent(req) {
		return t.next.RoundTrip(req)
	}
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.next.RoundTrip(r)
		if err == nil && attempt < t.p.Attempts {
			err = buffer(r, resp)
			if err != nil {
				resp = nil // the connection broke in the body: try again from the start
			}
		}
		if attempt == t.p.Attempts || !t.retriable(resp, err) {
			return resp, err
		}
		wait, ok := t.wait(resp, attempt)
		if !ok {
			return resp, err // the server asks for longer than MaxWait: let the caller say so
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if serr := t.p.Sleep(req.Context(), wait); serr != nil {
			if err == nil {
				err = serr
			}
			return nil, err
		}
	}
}

// maxBuffered bounds the answers read whole inside RoundTrip: manifests, configs, API pages.
const maxBuffered = 8 << 20

// buffer reads a small successful GET answer whole, so that a connection cut in the middle of
// its body is retried here instead of surfacing later as the caller's "unexpected EOF". Large
// or unknown-length bodies (blobs) are left streaming.
func buffer(req *http.Request, resp *http.Response) error {
	if req.Method != http.MethodGet || resp.StatusCode/100 != 2 || resp.ContentLength < 0 || resp.ContentLength > maxBuffered {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && int64(len(b)) != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// idempotent reports whether req may be sent again.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func (t *transport) retriable(resp *http.Response, err error) bool {
	if err != nil {
		return transient(err)
	}
	return slices.Contains(t.p.Statuses, resp.StatusCode)
}

// transient is an error of the connection, not of the request: worth another try.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// wait is how long to wait before attempt+1: the server's Retry-After (seconds or an HTTP
// date), or backoff with full jitter. false when the server asks for more than MaxWait.
func (t *transport) wait(resp *http.Response, attempt int) (time.Duration, bool) {
	if resp != nil {
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			if d > t.p.MaxWait {
				return 0, false
			}
			return d, true
		}
	}
	backoff := t.p.Base << (attempt - 1)
	if backoff > t.p.MaxDelay || backoff <= 0 {
		backoff = t.p.MaxDelay
	}
	return time.Duration(rand.Int64N(int64(backoff)) + 1), true
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), 0), true
	}
	return 0, false
}

// Do runs op, and runs it again from its start while it fails with an error retriable says is
// worth another try, up to p.Attempts in all, with p's backoff between tries: for what the
// transport must not repeat by itself, such as a blob upload (POST, PATCH, PUT) that a reset or
// a 5xx broke half-way — the next try starts a new upload session. retriable nil means
// Transient. The error is op's last, or ctx's when it ends during a wait.
func (p Policy) Do(ctx context.Context, retriable func(error) bool, op func() error) error {
	p = p.withDefaults()
	if retriable == nil {
		retriable = Transient
	}
	t := &transport{p: p}
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt == p.Attempts || !retriable(err) || ctx.Err() != nil {
			return err
		}
		wait, _ := t.wait(nil, attempt)
		if serr := p.Sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

// Transient reports whether err is a failure of the connection rather than of the request: a
// reset, a refused connection, a body cut short, a timeout. A cancelled context is not.
func Transient(err error) bool { return transient(err) }

// Status reports whether code is one of the statuses p retries.
func (p Policy) Status(code int) bool {
	return slices.Contains(p.withDefaults().Statuses, code)
}

// Settle is how long a writer whose read-to-write took window waits before reading back what
// it wrote, on a store without compare-and-swap: longer than another writer like it takes from
// its read to its write (twice window, plus least), with up to half again of jitter so that two
// writers that collided do not collide again; at most most, unless most is 0.
func Settle(window, least, most time.Duration) time.Duration {
	d := 2*window + least
	d += rand.N(d/2 + 1)
	if most > 0 {
		d = min(d, most)
	}
	return d
}

// Sleep waits d, or until ctx ends (its error then). A d of zero or less waits nothing, and
// gives ctx's error if it has ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
