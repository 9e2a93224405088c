package discover

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fakeupstream"
)

// fakeClock advances only when slept on.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 3, 4, 11, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) total() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Duration
	for _, d := range c.slept {
		t += d
	}
	return t
}

// staticSource is a Source with fixed releases.
type staticSource []Release

func (s staticSource) Releases(context.Context) ([]Release, error) { return s, nil }

// fake starts a fakeupstream server for the test.
func fake(t *testing.T, fx fakeupstream.Fixture) (*fakeupstream.Server, *httptest.Server) {
	t.Helper()
	s := fakeupstream.New(fx)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// logBuffer captures slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// hermetic are the options every network test passes: no ambient token, a quiet logger.
func hermetic(extra ...Option) []Option {
	l, _ := testLogger()
	return append([]Option{WithToken(""), WithLogger(l)}, extra...)
}

var _ http.Handler = (*fakeupstream.Server)(nil)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }
