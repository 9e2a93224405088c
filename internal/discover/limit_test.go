package discover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/hostlimit"
)

// inFlight counts the requests a handler is serving at once, and holds each of them until
// release is called.
type inFlight struct {
	next    http.Handler
	now     atomic.Int64
	peak    atomic.Int64
	served  atomic.Int64
	release chan struct{}
	once    sync.Once
}

func (h *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.now.Add(1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	select {
	case <-h.release:
	case <-r.Context().Done():
		h.now.Add(-1)
		return
	}
	// Out of flight before the answer is written: once the client has its headers, the limiter
	// lets the next request go, which may reach here before a deferred decrement would run.
	h.now.Add(-1)
	h.served.Add(1)
	h.next.ServeHTTP(w, r)
}

func (h *inFlight) open() { h.once.Do(func() { close(h.release) }) }

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

// TestHostLimitManySources starts many sources and gates against one host at once and counts,
// at the server, how many requests are in flight: never more than the limit, and the limit is
// reached (the sources do run concurrently). Every request is held at the server until the
// limit is full and every other request queues in the limiter, so a missing or leaking limit
// shows up as a peak above it.
func TestHostLimitManySources(t *testing.T) {
	const github, gitlab, gates = 12, 6, 6
	fx := fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{}, GitLab: map[string][]fakeupstream.Tag{}, Files: map[string][]byte{}}
	for i := range github {
		fx.GitHub[fmt.Sprintf("acme/app%d", i)] = manyReleases(3)
	}
	for i := range gitlab {
		fx.GitLab[fmt.Sprintf("group/app%d", i)] = glTags(2)
	}
	fx.Files["bin/app-amd64-v1.0.0"] = []byte("binary")

	tests := []struct {
		name  string
		limit *hostlimit.Limit
		want  int
	}{
		{"WithHostLimit(hostlimit.New(3))", hostlimit.New(3), 3},
		{"a run's limit (run shares one of DefaultHostConcurrency)", hostlimit.New(DefaultHostConcurrency), DefaultHostConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &inFlight{next: fakeupstream.New(fx), release: make(chan struct{})}
			srv := httptest.NewServer(h)
			defer srv.Close()
			defer h.open()
			opts := hermetic(WithAPI(srv.URL), WithBaseURL(srv.URL))
			lim := tt.limit
			opts = append(opts, WithHostLimit(lim))
			gate := NewGate([]config.Require{{URL: tmpl(t, srv.URL+"/files/bin/app-{{.Arch}}-v{{.Version}}")}}, plats(t, "linux/amd64"), opts...)

			const total = github + gitlab + gates
			errs := make(chan error, total)
			var wg sync.WaitGroup
			for i := range github {
				wg.Go(func() {
					rs, err := NewGitHub(fmt.Sprintf("acme/app%d", i), opts...).Releases(context.Background())
					if err == nil && len(rs) != 3 {
						err = fmt.Errorf("github app%d: %d releases", i, len(rs))
					}
					errs <- err
				})
			}
			for i := range gitlab {
				wg.Go(func() {
					rs, err := NewGitLab("gitlab.example", fmt.Sprintf("group/app%d", i), opts...).Releases(context.Background())
					if err == nil && len(rs) != 2 {
						err = fmt.Errorf("gitlab app%d: %d tags", i, len(rs))
					}
					errs <- err
				})
			}
			for range gates {
				wg.Go(func() {
					reason, err := gate.Check(context.Background(), ver("1.0.0"))
					if err == nil && reason != "" {
						err = errors.New(reason)
					}
					errs <- err
				})
			}

			host := strings.TrimPrefix(srv.URL, "http://")
			waitFor(t, "the limit to fill and the other requests to queue", func() bool {
				n := h.now.Load()
				return n > int64(tt.want) || (n == int64(tt.want) && lim.Queued(host) == total-tt.want)
			})
			h.open()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if p := h.peak.Load(); p != int64(tt.want) {
				t.Errorf("peak in flight at the server %d, want %d", p, tt.want)
			}
			if h.served.Load() != total {
				t.Errorf("%d requests served, want %d", h.served.Load(), total)
			}
			if q := lim.Queued(host); q != 0 {
				t.Errorf("%d requests still queued", q)
			}
		})
	}
}
