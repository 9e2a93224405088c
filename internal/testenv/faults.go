package testenv

import (
	"errors"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault kinds, as FaultProxy.Counts and Event.Fault name them.
const (
	Fault500      = "500"
	Fault502      = "502"
	Fault503      = "503"
	Fault429      = "429"
	FaultReset    = "reset"
	FaultStall    = "stall"
	FaultTruncate = "truncate"
)

// Faults configures FaultProxy. Rates are probabilities per request (0..1), drawn from a
// math/rand/v2 PCG source seeded with Seed, so a failing trial can be replayed.
//
// The kinds are tried in the order of the fields, and the first that fires is the request's
// one fault: with ServerError 0.3 and TooMany 0.3, 30% of requests get a 5xx and 21% a 429.
// Every eligible request draws the same amount of randomness whatever happens to it, so the
// faults depend only on the seed and the order of the requests.
type Faults struct {
	Seed uint64

	// ServerError answers 500, 502 or 503 (chosen at random) without forwarding.
	ServerError float64
	// TooMany answers 429 with Retry-After: RetryAfter (whole seconds, rounded up; default
	// 1) without forwarding.
	TooMany    float64
	RetryAfter time.Duration
	// Reset forwards, then cuts the connection in the middle of the response body. A response
	// without a body (HEAD, 204, 304, Content-Length: 0) is cut before its headers.
	Reset float64
	// Stall forwards, then holds the response for StallFor (default 2s) before sending it, or
	// until the client gives up.
	Stall    float64
	StallFor time.Duration
	// TruncateUpload, for a PUT, PATCH or POST with a body, forwards only the first half of
	// the body and then fails the backend request, so the upload arrives truncated or fails
	// (the client usually sees a 502). A body of unknown length is cut halfway through its
	// first read. Other requests are not eligible for it.
	TruncateUpload float64

	// Only picks the requests that may be faulted; nil: every request. The others pass
	// through and draw no randomness.
	Only func(r *http.Request) bool
}

// Event is one request FaultProxy saw and the fault it injected ("" for none).
type Event struct {
	Method, Path, Fault string
}

func (e Event) String() string {
	if e.Fault == "" {
		return e.Method + " " + e.Path
	}
	return e.Method + " " + e.Path + ": " + e.Fault
}

// FaultProxy is a running reverse proxy that misbehaves as its Faults say. It changes nothing
// else: method, path, Host header and bodies pass through, and only Location and Link
// response headers that name the backend are rewritten to name the proxy, so clients that
// follow them (blob uploads, pagination) stay behind it.
type FaultProxy struct {
	// Addr is the host:port to give clients instead of the backend's.
	Addr string

	// Requests counts the requests received, Injected the faults injected. Safe to read at
	// any time.
	Requests, Injected atomic.Int64

	backend *url.URL
	rp      *httputil.ReverseProxy
	done    chan struct{} // closed when the test ends: stalls stop waiting

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	counts map[string]int64
	events []Event
}

// NewFaultProxy starts a proxy to backend ("127.0.0.1:5000" or "http://127.0.0.1:5000") on a
// loopback port, and stops it when the test ends.
func NewFaultProxy(t testing.TB, backend string, f Faults) *FaultProxy {
	t.Helper()
	if !strings.Contains(backend, "://") {
		backend = "http://" + backend
	}
	u, err := url.Parse(backend)
	if err != nil || u.Host == "" {
		t.Fatalf("testenv: fault proxy backend %q: %v", backend, err)
	}
	p := &FaultProxy{backend: u, done: make(chan struct{}), counts: map[string]int64{}}
	p.SetFaults(f)

	quiet := log.New(io.Discard, "", 0) // cut connections and given-up clients are the point
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the backend sees the Host its client asked for
		},
		Transport:      tr,
		ModifyResponse: p.rewriteHeaders,
		ErrorLog:       quiet,
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ErrorLog = quiet
	srv.Start()
	p.Addr = srv.Listener.Addr().String()
	t.Cleanup(func() {
		close(p.done)
		srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// SetFaults replaces the faults while the proxy runs (for example Faults{} to let a run
// converge) and reseeds the random source from f.Seed.
func (p *FaultProxy) SetFaults(f Faults) {
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	if f.StallFor <= 0 {
		f.StallFor = 2 * time.Second
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(f.Seed, f.Seed))
}

// Counts is the number of faults injected so far by kind (Fault500 … FaultTruncate); kinds
// never injected are absent.
func (p *FaultProxy) Counts() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts := make(map[string]int64, len(p.counts))
	for k, n := range p.counts {
		counts[k] = n
	}
	return counts
}

// Events lists the requests received so far, in the order they drew their faults.
func (p *FaultProxy) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// decide draws r's fault ("" for none) and records it.
func (p *FaultProxy) decide(r *http.Request) (string, Faults) {
	p.Requests.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	fault := ""
	if f.Only == nil || f.Only(r) {
		// Always the same six draws, so one request's fate does not shift the next one's.
		serverError, tooMany, reset, stall, truncate := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
		code := [...]string{Fault500, Fault502, Fault503}[p.rng.IntN(3)]
		switch {
		case serverError < f.ServerError:
			fault = code
		case tooMany < f.TooMany:
			fault = Fault429
		case reset < f.Reset:
			fault = FaultReset
		case stall < f.Stall:
			fault = FaultStall
		case truncate < f.TruncateUpload && hasUpload(r):
			fault = FaultTruncate
		}
	}
	if fault != "" {
		p.Injected.Add(1)
		p.counts[fault]++
	}
	p.events = append(p.events, Event{Method: r.Method, Path: r.URL.Path, Fault: fault})
	return fault, f
}

func hasUpload(r *http.Request) bool {
	switch r.Method {
	case http.MethodPut, http.MethodPatch, http.MethodPost:
		return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	}
	return false
}

// ServeHTTP proxies r to the backend, with r's fault.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault, f := p.decide(r)
	switch fault {
	case Fault500, Fault502, Fault503:
		code, _ := strconv.Atoi(fault)
		http.Error(w, "faultproxy: injected "+fault, code)
	case Fault429:
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(f.RetryAfter.Seconds())), 10))
		http.Error(w, "faultproxy: injected 429", http.StatusTooManyRequests)
	case FaultReset:
		p.rp.ServeHTTP(&resetWriter{ResponseWriter: w, head: r.Method == http.MethodHead, limit: -1}, r)
	case FaultStall:
		p.rp.ServeHTTP(&stallWriter{ResponseWriter: w, wait: func() {
			timer := time.NewTimer(f.StallFor)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-r.Context().Done():
			case <-p.done:
			}
		}}, r)
	case FaultTruncate:
		r.Body = &truncatedBody{ReadCloser: r.Body, left: r.ContentLength / 2}
		p.rp.ServeHTTP(w, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// rewriteHeaders points Location and Link headers that name the backend at the proxy.
// Relative values already resolve against the proxy and are left alone.
func (p *FaultProxy) rewriteHeaders(resp *http.Response) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", p.rewriteURL(loc))
	}
	if links := resp.Header.Values("Link"); len(links) > 0 {
		resp.Header.Del("Link")
		for _, l := range links {
			resp.Header.Add("Link", p.rewriteLink(l))
		}
	}
	return nil
}

func (p *FaultProxy) rewriteURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host != p.backend.Host {
		return s
	}
	u.Scheme, u.Host = "http", p.Addr
	return u.String()
}

// rewriteLink rewrites each <URL> of a Link header value.
func (p *FaultProxy) rewriteLink(v string) string {
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(v, "<")
		target, after, ok2 := strings.Cut(rest, ">")
		if !ok || !ok2 {
			b.WriteString(v)
			return b.String()
		}
		b.WriteString(before + "<" + p.rewriteURL(target) + ">")
		v = after
	}
}

// errCut is what resetWriter's Write returns once it has cut the connection.
var errCut = errors.New("faultproxy: connection cut")

// resetWriter passes the first half of the response body, then hijacks the connection and
// closes it. limit is the number of body bytes to pass; -1 until known.
type resetWriter struct {
	http.ResponseWriter
	head        bool
	wroteHeader bool
	cut         bool
	limit, sent int64
}

func (w *resetWriter) WriteHeader(code int) {
	if w.cut || w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wroteHeader = true
	cl, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64)
	if w.head || code == http.StatusNoContent || code == http.StatusNotModified || (err == nil && cl == 0) {
		w.hangUp() // no body to cut in the middle of: cut before the headers
		return
	}
	if err == nil {
		w.limit = cl / 2
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *resetWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.cut {
		return 0, errCut
	}
	if w.limit < 0 { // unknown length: cut halfway through the first write
		w.limit = int64(len(b)) / 2
	}
	n := int(min(int64(len(b)), w.limit-w.sent))
	n, err := w.ResponseWriter.Write(b[:n])
	w.sent += int64(n)
	if err != nil {
		return n, err
	}
	if w.sent >= w.limit {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
		w.hangUp()
		return n, errCut
	}
	return n, nil
}

func (w *resetWriter) hangUp() {
	w.cut = true
	conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func (w *resetWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stallWriter calls wait before the response's headers go out.
type stallWriter struct {
	http.ResponseWriter
	wait    func()
	started bool
}

func (w *stallWriter) WriteHeader(code int) {
	if !w.started && (code < 100 || code >= 200) {
		w.started = true
		w.wait()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *stallWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// truncatedBody passes left bytes of an upload (half of its first read when its length is
// unknown, left < 0), then fails with io.ErrUnexpectedEOF.
type truncatedBody struct {
	io.ReadCloser
	left int64
}

func (b *truncatedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	if b.left < 0 {
		n /= 2
		b.left = 0
		if n == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		return n, nil
	}
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
