// Package deadline bounds HTTP requests in time, so that a peer that takes the connection and
// never answers, or answers and then stalls, fails its request instead of blocking the run.
//
// Transport is a decorator over any http.RoundTripper. Where it sits decides what it bounds:
// under the retries it bounds one attempt on the wire, over them the whole request. The error
// it gives (*Error) names the host, and it is not a net.Error: the retry policies do not try a
// stalled peer again.
package deadline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limit is one bound of a request, and what its error says when it is hit ("no answer").
// Zero After is no bound.
type Limit struct {
	After time.Duration
	What  string
}

// Error is a request that its peer did not serve in time: "registry ghcr.io: no answer within
// 30s".
type Error struct {
	Peer  string // the host, after the Transport's Noun
	What  string // the Limit's
	After time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s within %s", e.Peer, e.What, e.After) }

// Transport bounds each request it sends through Next.
type Transport struct {
	Next http.RoundTripper // nil is http.DefaultTransport
	Noun string            // what the host is, before it in errors ("registry"); "" is none

	Header  Limit // the answer's headers must come within Header.After of the request being sent
	Request Limit // the request, its answer's body read to the end, must be done within Request.After

	// Streaming requests (a big blob, up or down) are bounded by Idle alone: such a request
	// fails when no byte moved, either way, for Idle.After. nil is none.
	Streaming func(*http.Request) bool
	Idle      Limit
}

// RoundTrip sends req through Next under the Transport's limits. An error a limit caused, from
// RoundTrip or from reading the answer's body, is that limit's *Error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{cancel: cancel}
	peer := req.URL.Host
	if t.Noun != "" {
		peer = t.Noun + " " + peer
	}
	var header *Error
	stream := t.Streaming != nil && t.Streaming(req)
	if stream {
		// one idle timer: for the headers, then for each read of either body
		w.idle, w.limit = w.start(peer, t.Idle), t.Idle.After
	} else {
		w.header, header = w.start(peer, t.Header), &Error{Peer: peer, What: t.Header.What, After: t.Header.After}
		w.start(peer, t.Request)
	}
	out := req.Clone(ctx)
	if w.idle != nil && req.Body != nil && req.Body != http.NoBody {
		out.Body = &body{rc: req.Body, w: w}
	}
	resp, err := next.RoundTrip(out)
	if err != nil {
		w.stop()
		cancel(nil)
		if cause := w.cause(); cause != nil {
			return nil, cause
		}
		return nil, err
	}
	if w.header != nil && !w.header.Stop() { // it fired: whatever came back came too late
		resp.Body.Close()
		w.stop()
		cancel(nil)
		return nil, header
	}
	w.moved()
	resp.Body = &body{rc: resp.Body, w: w, answer: true}
	return resp, nil
}

// watch is one request's timers.
type watch struct {
	cancel context.CancelCauseFunc
	header *time.Timer   // the headers' timer (not for a streaming request)
	idle   *time.Timer   // a streaming request's: restarted by each byte that moves
	limit  time.Duration // the idle timer's
	timers []*time.Timer

	mu    sync.Mutex
	fired error
}

// start starts l's timer, which fails the request with l's error; nil for no bound.
func (w *watch) start(peer string, l Limit) *time.Timer {
	if l.After <= 0 {
		return nil
	}
	cause := &Error{Peer: peer, What: l.What, After: l.After}
	t := time.AfterFunc(l.After, func() { w.fire(cause) })
	w.timers = append(w.timers, t)
	return t
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

// moved restarts a streaming request's idle timer.
func (w *watch) moved() {
	if w.idle != nil {
		w.idle.Reset(w.limit)
	}
}

func (w *watch) stop() {
	for _, t := range w.timers {
		t.Stop()
	}
}

// body is a request's or an answer's body under the request's watch: reads that move bytes
// restart a streaming request's idle timer, and an error after a timer fired is that limit's.
// The answer's body read to its end, or closed, ends the request.
type body struct {
	rc     io.ReadCloser
	w      *watch
	answer bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.moved()
	}
	switch {
	case err == io.EOF && b.answer:
		b.w.stop()
	case err != nil && err != io.EOF:
		if cause := b.w.cause(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (b *body) Close() error {
	err := b.rc.Close()
	if b.answer {
		b.w.stop()
		b.w.cancel(nil)
	}
	return err
}
