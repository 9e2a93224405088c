package discover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fakeupstream"
)

// serveFile answers every request with a testdata payload, as the real API would.
// When seenPath is not nil it receives the escaped path of the last request.
func serveFile(t *testing.T, path string, hdr http.Header, seenPath *string) *httptest.Server {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seenPath != nil {
			*seenPath = r.URL.EscapedPath()
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGitHubTestdata(t *testing.T) {
	srv := serveFile(t, "testdata/github_releases_mattermost.json", nil, nil)
	got, err := NewGitHub("mattermost/mattermost", hermetic(WithAPI(srv.URL))...).Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Release{
		{Tag: "v10.5.0", Name: "v10.5.0", Draft: true, Commit: "master", HasRelease: true},
		{Tag: "v10.4.0-rc1", Name: "v10.4.0-rc1", Prerelease: true, Published: time.Date(2025, 1, 10, 8, 3, 51, 0, time.UTC), Commit: "release-10.4", HasRelease: true},
		{Tag: "v10.3.1", Name: "v10.3.1", Published: time.Date(2024, 12, 17, 10, 24, 9, 0, time.UTC), Commit: "release-10.3", HasRelease: true},
		{Tag: "v9.11.6", Name: "v9.11.6", Published: time.Date(2024, 11, 28, 9, 0, 31, 0, time.UTC), Commit: "release-9.11", HasRelease: true},
		{Tag: "v10.2.0", Name: "v10.2.0", Published: time.Date(2024, 11, 15, 12, 30, 0, 0, time.UTC), Commit: "release-10.2", HasRelease: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func manyReleases(n int) []fakeupstream.Release {
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]fakeupstream.Release, n)
	for i := range rs {
		v := n - i
		rs[i] = fakeupstream.Release{Tag: fmt.Sprintf("v%d.%d.0", v/100+1, v%100), Published: base.Add(time.Duration(v) * time.Hour)}
	}
	return rs
}

func TestGitHubPagination(t *testing.T) {
	tests := []struct {
		name     string
		maxPages int
		want     int
		requests int64
	}{
		{"three pages", 10, 250, 3},
		{"bounded by max_pages", 2, 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(250)}})
			l, logs := testLogger()
			g := NewGitHub("acme/app", WithToken(""), WithLogger(l), WithAPI(srv.URL), WithMaxPages(tt.maxPages))
			got, err := g.Releases(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want || s.Requests.Load() != tt.requests {
				t.Fatalf("got %d releases in %d requests, want %d in %d", len(got), s.Requests.Load(), tt.want, tt.requests)
			}
			if got[0].Tag != "v3.50.0" || got[len(got)-1].Published.After(got[0].Published) {
				t.Errorf("order: first %s", got[0].Tag)
			}
			if tt.maxPages == 2 && !strings.Contains(logs.String(), "max_pages") {
				t.Errorf("no warning about max_pages: %s", logs)
			}
			if rl := g.RateLimit(); rl == nil || rl.Remaining <= 0 {
				t.Errorf("RateLimit = %+v", rl)
			}
		})
	}
}

func TestGitHubETagCache(t *testing.T) {
	s, srv := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(250)}})
	dir := t.TempDir()
	run := func(opts ...Option) []Release {
		t.Helper()
		got, err := NewGitHub("acme/app", hermetic(append([]Option{WithAPI(srv.URL), WithCacheDir(dir)}, opts...)...)...).Releases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := run()
	if s.OK.Load() != 3 || s.NotModified.Load() != 0 {
		t.Fatalf("first run: %d 200s, %d 304s", s.OK.Load(), s.NotModified.Load())
	}
	second := run()
	if s.OK.Load() != 3 || s.NotModified.Load() != 3 {
		t.Errorf("repeat run: %d 200s, %d 304s; want 3 and 3", s.OK.Load(), s.NotModified.Load())
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("cached run differs")
	}

	// A token changes the cache key: a page fetched with credentials is never served anonymously.
	run(WithToken("ghp_secret"))
	if s.OK.Load() != 6 {
		t.Errorf("authenticated run: %d 200s, want 6", s.OK.Load())
	}

	// A changed upstream is seen.
	s.SetReleases("acme/app", manyReleases(251))
	third := run()
	if len(third) != 251 || third[0].Tag != "v3.51.0" {
		t.Errorf("after upstream change: %d releases, first %s", len(third), third[0].Tag)
	}

	// A corrupt entry is a miss, not an error.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.WriteFile(dir+"/"+e.Name(), []byte("{not json"), 0o600)
	}
	if got := run(); len(got) != 251 {
		t.Errorf("with corrupt cache: %d releases", len(got))
	}
}

func TestGitHubRateLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     func(s *fakeupstream.Server, now time.Time)
		wantErr   string
		wantSlept time.Duration
	}{
		{
			name:      "403 reset within bound",
			limit:     func(s *fakeupstream.Server, now time.Time) { s.LimitPrimary(1, now.Add(30*time.Second)) },
			wantSlept: 31 * time.Second,
		},
		{
			name:    "403 reset beyond bound",
			limit:   func(s *fakeupstream.Server, now time.Time) { s.LimitPrimary(1, now.Add(time.Hour)) },
			wantErr: "github acme/app: releases page 1: rate limited until 12:00:00 UTC (set GITHUB_TOKEN or wait)",
		},
		{
			name:      "429 Retry-After",
			limit:     func(s *fakeupstream.Server, now time.Time) { s.LimitSecondary(1, 90*time.Second) },
			wantSlept: 90 * time.Second,
		},
		{
			name:    "429 Retry-After beyond bound",
			limit:   func(s *fakeupstream.Server, now time.Time) { s.LimitSecondary(1, 10*time.Minute) },
			wantErr: "rate limited until 11:10:00 UTC",
		},
		{
			name:    "limited on every retry",
			limit:   func(s *fakeupstream.Server, now time.Time) { s.LimitSecondary(10, 5*time.Second) },
			wantErr: "rate limited",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(3)}})
			clock := newFakeClock()
			tt.limit(s, clock.Now())
			got, err := NewGitHub("acme/app", hermetic(WithAPI(srv.URL), WithClock(clock))...).Releases(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var rl *RateLimitError
				if !errors.As(err, &rl) {
					t.Errorf("not a *RateLimitError: %T", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || clock.total() != tt.wantSlept {
				t.Errorf("got %d releases after sleeping %v, want 3 after %v", len(got), clock.total(), tt.wantSlept)
			}
		})
	}
}

// blockingClock sleeps until the context is done.
type blockingClock struct{}

func (blockingClock) Now() time.Time { return time.Now() }
func (blockingClock) Sleep(ctx context.Context, d time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestGitHubRateLimitHonoursContext(t *testing.T) {
	s, srv := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(3)}})
	s.LimitSecondary(1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := NewGitHub("acme/app", hermetic(WithAPI(srv.URL), WithClock(blockingClock{}))...).Releases(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// faultOnPage2 forwards to next except for page 2, which fault answers.
func faultOnPage2(next http.Handler, fault http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			fault(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestGitHubErrors(t *testing.T) {
	const prefix = "github acme/app: releases page 2: GET /repos/acme/app/releases: "
	tests := []struct {
		name  string
		fault http.HandlerFunc
		want  string
	}{
		{"502", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		}, prefix + "502 Bad Gateway"},
		{"HTML page with 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Unicorn!</title></head></html>"))
		}, prefix + `200 OK: not JSON (Content-Type "text/html; charset=utf-8"; body starts "<!DOCTYPE html><html><head><titl"… (64 bytes))`},
		{"truncated JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[{"tag_name":"v1.0.0","draft":fal`))
		}, prefix + "200 OK: truncated JSON (33 bytes)"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[]\x00\xff garbage"))
		}, prefix + "200 OK: invalid JSON: invalid character"},
		{"wrong shape", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"tag_name":"v1.0.0"}`))
		}, prefix + "want a JSON array of releases"},
		{"wrong field type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[{"tag_name":7}]`))
		}, prefix + "want a JSON array of releases"},
		{"404 with API message", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`))
		}, prefix + `404 Not Found: "Not Found"`},
		{"403 forbidden, not a rate limit", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"message":"Resource protected by organization SAML enforcement."}`))
		}, prefix + `403 Forbidden: "Resource protected by organization SAML enforcement."`},
		{"body over 32 MiB", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			chunk := []byte(strings.Repeat(" ", 1<<20))
			_, _ = w.Write([]byte("["))
			for range 33 {
				_, _ = w.Write(chunk)
			}
			_, _ = w.Write([]byte("]"))
		}, prefix + "200 OK: body larger than 32 MiB"},
		{"304 without a cached page", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(304)
		}, prefix + "304 Not Modified"},
		{"next link to another host", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", `<https://evil.example/repos/acme/app/releases?page=3>; rel="next"`)
			_, _ = w.Write([]byte(`[]`))
		}, "github acme/app: releases page 3: refusing to follow https://evil.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeupstream.New(fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(250)}})
			srv := httptest.NewServer(faultOnPage2(s, tt.fault))
			defer srv.Close()
			_, err := NewGitHub("acme/app", hermetic(WithAPI(srv.URL), WithToken("ghp_TOPSECRET"))...).Releases(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestGitHubHeadersAndToken(t *testing.T) {
	var seen http.Header
	s := fakeupstream.New(fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(2)}})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		s.ServeHTTP(w, r)
	}))
	defer api.Close()
	if _, err := NewGitHub("acme/app", hermetic(WithAPI(api.URL), WithToken("ghp_abc"))...).Releases(context.Background()); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Authorization":        "Bearer ghp_abc",
		"Accept":               "application/vnd.github+json",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "archmirror",
	} {
		if got := seen.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}

	t.Run("GITHUB_TOKEN stays with api.github.com", func(t *testing.T) {
		t.Setenv("GITHUB_TOKEN", "ghp_from_env")
		if _, err := NewGitHub("acme/app", WithAPI(api.URL)).Releases(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := seen.Get("Authorization"); got != "" {
			t.Errorf("Authorization %q: $GITHUB_TOKEN followed api: to another host", got)
		}
	})
}

func TestGitHubTokenNotSentElsewhere(t *testing.T) {
	// The API redirects the listing to another origin (a different port is a different
	// origin; Go's client alone would keep Authorization there).
	other := fakeupstream.New(fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(2)}})
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherSrv.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer api.Close()

	_, err := NewGitHub("acme/app", hermetic(WithAPI(api.URL), WithToken("ghp_secret"))...).Releases(context.Background())
	apiHost, otherHost := strings.TrimPrefix(api.URL, "http://"), strings.TrimPrefix(otherSrv.URL, "http://")
	if err == nil || !strings.Contains(err.Error(), "redirect from "+apiHost+` to "`+otherHost+`" refused`) {
		t.Errorf("err = %v, want the redirect refused, naming both hosts", err)
	}
	if n, creds := other.Requests.Load(), other.Credentials(); n != 0 || len(creds) != 0 {
		t.Errorf("the other host got %d requests, %d credentials", n, len(creds))
	}
}

func TestGitHubBadInput(t *testing.T) {
	tests := []struct {
		repo, api, want string
	}{
		{"acme", "", `github "acme": want owner/repo`},
		{"acme/app/x", "", "want owner/repo"},
		{"../../etc/passwd", "", "want owner/repo"},
		{"acme/app", "ftp://x", "want an http(s) URL"},
		{"acme/app", "https://user:pw@ghe.example/api/v3", "want an http(s) URL"},
	}
	for _, tt := range tests {
		_, err := NewGitHub(tt.repo, hermetic(WithAPI(tt.api))...).Releases(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: err = %v, want %q", tt.repo, tt.api, err, tt.want)
		}
	}
}
