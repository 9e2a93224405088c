package target

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// deadlines bounds every registry request, so that a registry that takes the connection and
// never answers fails its request instead of blocking the run: the answer's headers must come
// within header, and the whole request (its body read to the end) must be done within
// request. A blob's body may take longer (a big layer, up or down): a blob request instead
// fails when no byte moved, either way, for header.
type deadlines struct {
	header, request time.Duration
	next            http.RoundTripper
}

func (d deadlines) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{cancel: cancel}
	host := req.URL.Host
	blob := isBlob(req)
	if blob {
		// one idle timer: for the headers, then for each read of either body
		w.idle = d.header
		w.timers = append(w.timers, time.AfterFunc(d.header, func() { w.fire(&stallError{host: host, what: "no byte moved", d: d.header}) }))
	} else {
		w.header = time.AfterFunc(d.header, func() { w.fire(&stallError{host: host, what: "no answer", d: d.header}) })
		w.timers = append(w.timers, w.header, time.AfterFunc(d.request, func() { w.fire(&stallError{host: host, what: "request not done", d: d.request}) }))
	}
	out := req.Clone(ctx)
	if blob && req.Body != nil && req.Body != http.NoBody {
		out.Body = &watchedBody{rc: req.Body, w: w}
	}
	resp, err := d.next.RoundTrip(out)
	if err != nil {
		w.stop()
		cancel(nil)
		if cause := w.cause(); cause != nil {
			return nil, cause
		}
		return nil, err
	}
	if w.header != nil {
		w.header.Stop()
	}
	w.moved()
	resp.Body = &watchedBody{rc: resp.Body, w: w, close: true}
	return resp, nil
}

// isBlob reports whether req is a blob's: its path, or that of the request it was redirected
// from (a blob GET is often redirected to a storage host), has /blobs/ in it.
func isBlob(req *http.Request) bool {
	for r := req; r != nil; {
		if strings.Contains(r.URL.Path, "/blobs/") {
			return true
		}
		if r.Response == nil {
			break
		}
		r = r.Response.Request
	}
	return false
}

// stallError is a request that a registry host did not answer in time.
type stallError struct {
	host, what string
	d          time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("registry %s: %s within %s", e.host, e.what, e.d)
}

// watch is one request's timers.
type watch struct {
	cancel context.CancelCauseFunc
	header *time.Timer   // the headers' timer (not for a blob)
	idle   time.Duration // a blob's: how long a body may not move
	timers []*time.Timer

	mu    sync.Mutex
	fired error
}

func (w *watch) fire(cause error) {
	w.mu.Lock()
	if w.fired == nil {
		w.fired = cause
	}
	w.mu.Unlock()
	w.cancel(cause)
}

func (w *watch) cause() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// moved restarts a blob's idle timer.
func (w *watch) moved() {
	if w.idle > 0 {
		w.timers[0].Reset(w.idle)
	}
}

func (w *watch) stop() {
	for _, t := range w.timers {
		t.Stop()
	}
}

// watchedBody is a request's or a response's body under the request's watch: reads that move
// bytes restart a blob's idle timer, and an error after a timer fired is that timeout. Closing
// a response's body ends the request.
type watchedBody struct {
	rc    io.ReadCloser
	w     *watch
	close bool // a response body: Close ends the watch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.moved()
	}
	switch {
	case err == io.EOF && b.close:
		b.w.stop()
	case err != nil && err != io.EOF:
		if cause := b.w.cause(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	if b.close {
		b.w.stop()
		b.w.cancel(nil)
	}
	return err
}
