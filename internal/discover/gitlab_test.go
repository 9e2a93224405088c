package discover

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fakeupstream"
)

const mmProject = "framasoft/framateam/mostlymatter"

func TestGitLabTestdata(t *testing.T) {
	var path string
	srv := serveFile(t, "testdata/gitlab_tags_mostlymatter.json", http.Header{"X-Next-Page": {""}, "X-Total-Pages": {"1"}}, &path)
	got, err := NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(srv.URL))...).Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := "/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags"; path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	want := []Release{
		// Annotated tag: the tag's own created_at.
		{Tag: "v10.3.1-limitless", Published: time.Date(2024, 12, 18, 10, 5, 40, 0, time.UTC), Commit: "8d3f0c2b6e1a4f5d9c7b3a2e1f0d9c8b7a6e5f4d", HasRelease: true},
		// Lightweight tag, no release: the commit's date.
		{Tag: "v10.2.0-limitless", Published: time.Date(2024, 11, 16, 8, 40, 3, 0, time.UTC), Commit: "4a1b2c3d4e5f60718293a4b5c6d7e8f901234567"},
		{Tag: "v10.1.3-limitless", Published: time.Date(2024, 10, 30, 14, 20, 11, 0, time.UTC), Commit: "c0ffee00112233445566778899aabbccddeeff00", HasRelease: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func glTags(n int) []fakeupstream.Tag {
	ts := make([]fakeupstream.Tag, n)
	for i := range ts {
		ts[i] = fakeupstream.Tag{Name: fmt.Sprintf("v10.%d.0-limitless", n-i), Committed: day(2024, 1, 1).Add(time.Duration(n-i) * time.Hour)}
	}
	return ts
}

func TestGitLabPaginationAndCache(t *testing.T) {
	s, srv := fake(t, fakeupstream.Fixture{GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(45)}})
	dir := t.TempDir()
	run := func() []Release {
		t.Helper()
		got, err := NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(srv.URL), WithPerPage(20), WithCacheDir(dir))...).Releases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := run()
	if len(first) != 45 || s.OK.Load() != 3 {
		t.Fatalf("got %d tags with %d 200s; want 45 with 3", len(first), s.OK.Load())
	}
	if first[0].Tag != "v10.45.0-limitless" || first[0].Commit == "" || first[0].Published.IsZero() {
		t.Errorf("first: %+v", first[0])
	}
	second := run()
	if s.OK.Load() != 3 || s.NotModified.Load() != 3 || !reflect.DeepEqual(first, second) {
		t.Errorf("repeat: %d 200s, %d 304s, equal %v", s.OK.Load(), s.NotModified.Load(), reflect.DeepEqual(first, second))
	}
}

func TestGitLabLinkOnlyPagination(t *testing.T) {
	// Keyset pagination sends no X-Next-Page, only Link.
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") == "" {
			w.Header().Set("Link", "<"+srv.URL+r.URL.EscapedPath()+`?cursor=abc&per_page=100>; rel="next"`)
			_, _ = w.Write([]byte(`[{"name":"v2.0.0","commit":{"id":"aa"}}]`))
			return
		}
		_, _ = w.Write([]byte(`[{"name":"v1.0.0","commit":{"id":"bb"}}]`))
	}))
	defer srv.Close()
	got, err := NewGitLab("gitlab.com", "a/b", hermetic(WithBaseURL(srv.URL))...).Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Tag != "v1.0.0" {
		t.Errorf("got %+v", got)
	}
}

func TestGitLabToken(t *testing.T) {
	s, srv := fake(t, fakeupstream.Fixture{GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(2)}})
	var seen http.Header
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		s.ServeHTTP(w, r)
	}))
	defer api.Close()
	_ = srv

	if _, err := NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(api.URL), WithToken("glpat-abc"))...).Releases(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seen.Get("PRIVATE-TOKEN") != "glpat-abc" || seen.Get("Authorization") != "" {
		t.Errorf("PRIVATE-TOKEN %q, Authorization %q", seen.Get("PRIVATE-TOKEN"), seen.Get("Authorization"))
	}
	t.Run("GITLAB_TOKEN stays with gitlab.com", func(t *testing.T) {
		t.Setenv("GITLAB_TOKEN", "glpat-env")
		if _, err := NewGitLab("framagit.org", mmProject, WithBaseURL(api.URL)).Releases(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := seen.Get("PRIVATE-TOKEN"); got != "" {
			t.Errorf("PRIVATE-TOKEN %q: $GITLAB_TOKEN reached another GitLab", got)
		}
	})
	t.Run("redirect elsewhere", func(t *testing.T) {
		other := fakeupstream.New(fakeupstream.Fixture{GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(2)}})
		otherSrv := httptest.NewServer(other)
		defer otherSrv.Close()
		redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, otherSrv.URL+r.URL.RequestURI(), http.StatusFound)
		}))
		defer redir.Close()
		_, err := NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(redir.URL), WithToken("glpat-abc"))...).Releases(context.Background())
		if err == nil || !strings.Contains(err.Error(), "redirect from "+strings.TrimPrefix(redir.URL, "http://")+" to") {
			t.Errorf("err = %v, want the redirect refused", err)
		}
		if n := other.Requests.Load(); n != 0 || len(other.Credentials()) != 0 {
			t.Errorf("the other host got %d requests, %d credentials", n, len(other.Credentials()))
		}
	})
}

func TestGitLabErrors(t *testing.T) {
	s := fakeupstream.New(fakeupstream.Fixture{GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(45)}})
	srv := httptest.NewServer(faultOnPage2(s, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, err := NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(srv.URL), WithPerPage(20), WithToken("glpat-TOPSECRET"))...).Releases(context.Background())
	want := "gitlab framagit.org framasoft/framateam/mostlymatter: tags page 2: GET /api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags: 503 Service Unavailable"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant   %s", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("token in error")
	}

	_, err = NewGitLab("framagit.org", "nope/missing", hermetic(WithBaseURL(srv.URL))...).Releases(context.Background())
	if err == nil || !strings.Contains(err.Error(), `404 Not Found: "404 Project Not Found"`) {
		t.Errorf("missing project: %v", err)
	}

	for _, tt := range []struct{ host, project, want string }{
		{"framagit.org", "../x", "want group/project"},
		{"framagit.org", "a//b", "want group/project"},
		{"framagit.org/evil", "a/b", "host: want a host name"},
		{"https://framagit.org", "a/b", "host: want a host name"},
	} {
		_, err := NewGitLab(tt.host, tt.project, hermetic()...).Releases(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: err = %v, want %q", tt.host, tt.project, err, tt.want)
		}
	}
}
