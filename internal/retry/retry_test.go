package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scripted answers each request with the next of its statuses (then 200), recording bodies.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	headers  []map[string]string
	bodies   []string
	n        atomic.Int32
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	i := int(s.n.Add(1)) - 1
	s.bodies = append(s.bodies, string(b))
	code := 200
	if i < len(s.statuses) {
		code = s.statuses[i]
		if i < len(s.headers) {
			for k, v := range s.headers[i] {
				w.Header().Set(k, v)
			}
		}
	}
	s.mu.Unlock()
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "answer")
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

func TestRetries(t *testing.T) {
	for _, tt := range []struct {
		name     string
		method   string
		statuses []int
		headers  []map[string]string
		policy   Policy
		want     int // final status
		tries    int
		waits    []time.Duration // exact waits, when known
	}{
		{"ok at once", "GET", nil, nil, Policy{}, 200, 1, nil},
		{"503 then ok", "GET", []int{503}, nil, Policy{}, 200, 2, nil},
		{"retry-after is honoured, never less", "HEAD", []int{429, 429}, []map[string]string{{"Retry-After": "3"}, {"Retry-After": "7"}}, Policy{}, 200, 3,
			[]time.Duration{3 * time.Second, 7 * time.Second}},
		{"retry-after above the bound: given up at once", "GET", []int{429}, []map[string]string{{"Retry-After": "600"}}, Policy{MaxWait: time.Minute}, 429, 1, nil},
		{"attempts bound", "GET", []int{500, 502, 503, 504, 500, 500}, nil, Policy{Attempts: 4}, 504, 4, nil},
		{"404 is an answer", "GET", []int{404}, nil, Policy{}, 404, 1, nil},
		{"PUT is retried with its body", "PUT", []int{502}, nil, Policy{}, 200, 2, nil},
		{"POST is not", "POST", []int{503}, nil, Policy{}, 503, 1, nil},
		{"PATCH is not", "PATCH", []int{503}, nil, Policy{}, 503, 1, nil},
		{"429 left to the caller", "GET", []int{429}, nil, Policy{Statuses: []int{500, 502, 503, 504}}, 429, 1, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{statuses: tt.statuses, headers: tt.headers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			sl := &sleeps{}
			tt.policy.Sleep = sl.sleep
			c := &http.Client{Transport: tt.policy.Transport(nil)}
			req, _ := http.NewRequest(tt.method, srv.URL+"/x", strings.NewReader("payload"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || string(b) != "answer" && tt.method != "HEAD" {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, b, tt.want)
			}
			if int(s.n.Load()) != tt.tries {
				t.Fatalf("%d tries, want %d", s.n.Load(), tt.tries)
			}
			for i, body := range s.bodies {
				if tt.method != "GET" && tt.method != "HEAD" && body != "payload" {
					t.Errorf("try %d sent body %q", i+1, body)
				}
			}
			if tt.waits != nil && !equal(sl.d, tt.waits) {
				t.Errorf("waited %v, want %v", sl.d, tt.waits)
			}
			for _, d := range sl.d {
				if tt.waits == nil && (d <= 0 || d > 8*time.Second) {
					t.Errorf("backoff %s outside (0, 8s]", d)
				}
			}
		})
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConnectionReset: a connection cut mid-answer is retried; a cancelled context is not.
func TestConnectionReset(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				conn.Close() // a reset, not an answer
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	sl := &sleeps{}
	c := &http.Client{Transport: Policy{Sleep: sl.sleep}.Transport(nil)}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("after a reset: %v", err)
	}
	resp.Body.Close()
	if n.Load() != 2 || len(sl.d) != 1 {
		t.Fatalf("%d tries, %d waits", n.Load(), len(sl.d))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	before := n.Load()
	if _, err := c.Do(req); err == nil || n.Load() != before {
		t.Fatalf("a cancelled request was sent or retried: %v, %d tries", err, n.Load()-before)
	}
}

// TestWaitStopsWithContext: the real sleep ends with the request's context.
func TestWaitStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(503)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	t0 := time.Now()
	_, err := (&http.Client{Transport: Default.Transport(nil)}).Do(req)
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(t0))
	}
}

// TestResetMidBody: an answer cut in the middle of its body is retried (the caller never sees
// the short read).
func TestResetMidBody(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		if n.Add(1) == 1 {
			_, _ = io.WriteString(w, "01234")
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	sl := &sleeps{}
	resp, err := (&http.Client{Transport: Policy{Sleep: sl.sleep}.Transport(nil)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "0123456789" || n.Load() != 2 {
		t.Fatalf("body %q, %v, after %d tries", b, err, n.Load())
	}
}

// TestDo restarts an operation while it fails with what retriable accepts, stops at the first
// error it does not, and gives up after Attempts.
func TestDo(t *testing.T) {
	var waits []time.Duration
	p := Policy{Attempts: 3, Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	flaky := errors.New("flaky")
	fatal := errors.New("fatal")
	retriable := func(err error) bool { return errors.Is(err, flaky) }

	runs := 0
	err := p.Do(context.Background(), retriable, func() error {
		runs++
		if runs < 3 {
			return flaky
		}
		return nil
	})
	if err != nil || runs != 3 || len(waits) != 2 {
		t.Fatalf("flaky twice: err %v after %d runs and %d waits, want nil after 3 and 2", err, runs, len(waits))
	}

	runs = 0
	err = p.Do(context.Background(), retriable, func() error { runs++; return flaky })
	if !errors.Is(err, flaky) || runs != 3 {
		t.Fatalf("always flaky: err %v after %d runs, want flaky after 3", err, runs)
	}

	runs = 0
	err = p.Do(context.Background(), retriable, func() error { runs++; return fatal })
	if !errors.Is(err, fatal) || runs != 1 {
		t.Fatalf("fatal: err %v after %d runs, want fatal after 1", err, runs)
	}

	// The default classifier restarts after a reset, not after a cancelled context.
	runs = 0
	err = p.Do(context.Background(), nil, func() error {
		runs++
		if runs == 1 {
			return &net.OpError{Op: "read", Err: syscall.ECONNRESET}
		}
		return context.Canceled
	})
	if !errors.Is(err, context.Canceled) || runs != 2 {
		t.Fatalf("reset then cancelled: err %v after %d runs, want context.Canceled after 2", err, runs)
	}
}
