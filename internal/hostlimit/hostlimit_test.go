package hostlimit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// waitFor polls cond until it holds; it fails the test after a generous deadline instead of
// hanging it. Nothing is asserted about how long it took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHostLimitReleasedAtHeaders: with one slot, a response whose body is still streaming does
// not keep a second request to the same host from being sent (holding the slot until the body
// is read would deadlock here), and a failed request gives its slot back.
func TestHostLimitReleasedAtHeaders(t *testing.T) {
	second := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			_, _ = w.Write([]byte("first half, "))
			w.(http.Flusher).Flush()
			select { // the rest only once the second request got through
			case <-second:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write([]byte("second half"))
		case "/second":
			close(second)
			_, _ = w.Write([]byte("ok"))
		case "/drop":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	}))
	defer srv.Close()
	lim := New(1)
	c := &http.Client{Transport: lim.Transport(nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a deadlock fails, not hangs
	defer cancel()
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Do(req)
	}

	first, err := get("/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := get("/second")
	if err != nil {
		t.Fatalf("second request while the first body streams: %v", err)
	}
	resp.Body.Close()
	body, err := io.ReadAll(first.Body)
	first.Body.Close()
	if err != nil || string(body) != "first half, second half" {
		t.Fatalf("first body %q, %v", body, err)
	}

	if _, err := get("/drop"); err == nil {
		t.Fatal("a dropped connection did not fail")
	}
	resp, err = get("/second-again")
	if err != nil {
		t.Fatalf("after a failed request: %v", err)
	}
	resp.Body.Close()
}

// TestHostLimitWaitHonoursContext: a request queued for a slot gives up when its context ends,
// and leaves the queue.
func TestHostLimitWaitHonoursContext(t *testing.T) {
	lim := New(1)
	release, err := lim.acquire(context.Background(), "api.example")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://API.example/x", nil)
		_, err := lim.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("sent without a slot")
		})).RoundTrip(req)
		done <- err
	}()
	waitFor(t, "the request to queue", func() bool { return lim.Queued("api.example") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if q := lim.Queued("api.example"); q != 0 {
		t.Errorf("%d still queued", q)
	}
	// Other hosts have slots of their own.
	other, err := lim.acquire(context.Background(), "other.example")
	if err != nil {
		t.Fatal(err)
	}
	other()
}
