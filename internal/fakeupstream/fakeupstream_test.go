package fakeupstream

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func releases(n int) []Release {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]Release, n)
	for i := range rs {
		rs[i] = Release{Tag: fmt.Sprintf("v1.%d.0", n-i), Name: fmt.Sprintf("v1.%d.0", n-i), Published: base.Add(time.Duration(n-i) * time.Hour)}
	}
	return rs
}

func get(t *testing.T, method, url string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestGitHubReleases(t *testing.T) {
	s := New(Fixture{GitHub: map[string][]Release{"acme/app": releases(250)}})
	srv := httptest.NewServer(s)
	defer srv.Close()

	tests := []struct {
		query    string
		n        int
		first    string
		wantNext bool
		wantPrev bool
	}{
		{"?per_page=100", 100, "v1.250.0", true, false},
		{"?per_page=100&page=2", 100, "v1.150.0", true, true},
		{"?per_page=100&page=3", 50, "v1.50.0", false, true},
		{"?per_page=100&page=4", 0, "", false, true},
		{"", 30, "v1.250.0", true, false}, // GitHub's default page size
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+"/repos/acme/app/releases"+tt.query, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var got []map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d releases, want %d", len(got), tt.n)
			}
			if tt.n > 0 && got[0]["tag_name"] != tt.first {
				t.Errorf("first tag %v, want %s", got[0]["tag_name"], tt.first)
			}
			for _, k := range []string{"id", "html_url", "tag_name", "name", "draft", "prerelease", "created_at", "published_at", "target_commitish", "author", "assets", "tarball_url"} {
				if tt.n > 0 {
					if _, ok := got[0][k]; !ok {
						t.Errorf("release lacks %q", k)
					}
				}
			}
			link := resp.Header.Get("Link")
			if got := strings.Contains(link, `rel="next"`); got != tt.wantNext {
				t.Errorf("next in Link = %v, want %v: %s", got, tt.wantNext, link)
			}
			if got := strings.Contains(link, `rel="prev"`); got != tt.wantPrev {
				t.Errorf("prev in Link = %v, want %v: %s", got, tt.wantPrev, link)
			}
			if resp.Header.Get("ETag") == "" || strings.HasPrefix(resp.Header.Get("ETag"), "W/") {
				t.Errorf("want a strong ETag, got %q", resp.Header.Get("ETag"))
			}
		})
	}

	resp, _ := get(t, "GET", srv.URL+"/repos/acme/nope/releases", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown repo: %d", resp.StatusCode)
	}
}

func TestDraftShape(t *testing.T) {
	s := New(Fixture{GitHub: map[string][]Release{"acme/app": {{Tag: "v2.0.0", Draft: true}, {Tag: "v1.0.0", Published: time.Now()}}}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	_, body := get(t, "GET", srv.URL+"/repos/acme/app/releases", nil)
	var got []map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got[0]["published_at"] != nil || !strings.Contains(got[0]["html_url"].(string), "untagged-") {
		t.Errorf("draft: published_at %v, html_url %v", got[0]["published_at"], got[0]["html_url"])
	}
	if got[1]["published_at"] == nil {
		t.Errorf("release: published_at null")
	}
}

func TestETag(t *testing.T) {
	s := New(Fixture{GitHub: map[string][]Release{"acme/app": releases(3)}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	u := srv.URL + "/repos/acme/app/releases"
	resp, _ := get(t, "GET", u, nil)
	etag := resp.Header.Get("ETag")
	resp, body := get(t, "GET", u, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("repeat: %d, %d bytes", resp.StatusCode, len(body))
	}
	if s.NotModified.Load() != 1 || s.OK.Load() != 1 || s.Requests.Load() != 2 {
		t.Errorf("counters: requests %d ok %d 304 %d", s.Requests.Load(), s.OK.Load(), s.NotModified.Load())
	}
	s.SetReleases("acme/app", releases(4))
	resp, _ = get(t, "GET", u, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
		t.Errorf("changed upstream: %d, etag %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

func TestRateLimit(t *testing.T) {
	s := New(Fixture{GitHub: map[string][]Release{"acme/app": releases(1)}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	u := srv.URL + "/repos/acme/app/releases"
	reset := time.Unix(1_900_000_000, 0)
	s.LimitPrimary(1, reset)
	s.LimitSecondary(1, 90*time.Second)

	resp, _ := get(t, "GET", u, nil)
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") != "1900000000" {
		t.Errorf("primary: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = get(t, "GET", u, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "90" {
		t.Errorf("secondary: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = get(t, "GET", u, nil)
	if resp.StatusCode != 200 {
		t.Errorf("after limits: %d", resp.StatusCode)
	}
	if n, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); n <= 0 {
		t.Errorf("remaining %q", resp.Header.Get("X-RateLimit-Remaining"))
	}
	if s.RateLimited.Load() != 2 {
		t.Errorf("rate limited %d", s.RateLimited.Load())
	}
}

func TestGitLabTags(t *testing.T) {
	tags := make([]Tag, 45)
	for i := range tags {
		tags[i] = Tag{Name: fmt.Sprintf("v1.%d.0-limitless", 44-i)}
	}
	tags[0].Created = time.Date(2024, 12, 18, 10, 5, 40, 0, time.UTC)
	tags[0].Release = true
	s := New(Fixture{GitLab: map[string][]Tag{"framasoft/framateam/mostlymatter": tags}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	base := srv.URL + "/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags"

	resp, body := get(t, "GET", base, nil)
	var got []map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || resp.Header.Get("X-Next-Page") != "2" || resp.Header.Get("X-Total-Pages") != "3" {
		t.Errorf("page 1: %d tags, next %q, total pages %q", len(got), resp.Header.Get("X-Next-Page"), resp.Header.Get("X-Total-Pages"))
	}
	if got[0]["release"] == nil || got[0]["created_at"] == nil || got[1]["release"] != nil || got[1]["created_at"] != nil {
		t.Errorf("release/created_at shapes: %v %v / %v %v", got[0]["release"], got[0]["created_at"], got[1]["release"], got[1]["created_at"])
	}
	if c, ok := got[0]["commit"].(map[string]any); !ok || len(c["id"].(string)) != 40 {
		t.Errorf("commit: %v", got[0]["commit"])
	}
	if l := resp.Header.Get("Link"); !strings.Contains(l, "/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags?") || !strings.Contains(l, `rel="next"`) {
		t.Errorf("Link lost the project escaping: %s", l)
	}
	if !strings.HasPrefix(resp.Header.Get("ETag"), `W/"`) {
		t.Errorf("GitLab sends weak ETags, got %q", resp.Header.Get("ETag"))
	}
	resp, body = get(t, "GET", base+"?page=3", nil)
	_ = json.Unmarshal(body, &got)
	if len(got) != 5 || resp.Header.Get("X-Next-Page") != "" || strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("page 3: %d tags, next %q, link %q", len(got), resp.Header.Get("X-Next-Page"), resp.Header.Get("Link"))
	}

	tests := []struct {
		path string
		want int
	}{
		{"/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags/v1.3.0-limitless", 200},
		{"/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags/v9.9.9-limitless", 404},
		{"/api/v4/projects/framasoft/framateam/mostlymatter/repository/tags", 404}, // unescaped: not a project
		{"/api/v4/projects/nope%2Fnope/repository/tags", 404},
	}
	for _, tt := range tests {
		resp, _ := get(t, "GET", srv.URL+tt.path, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
	if n := s.Hits("/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags/"); n != 2 {
		t.Errorf("tag hits %d, want 2", n)
	}
}

func TestFiles(t *testing.T) {
	s := New(Fixture{
		Files:     map[string][]byte{"mm/bin-amd64": []byte("ELF...amd64")},
		Redirects: map[string]string{"mm/latest-amd64": "mm/bin-amd64"},
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	tests := []struct {
		method, path string
		hdr          map[string]string
		noHEAD       bool
		want         int
		body         string
	}{
		{"GET", "/files/mm/bin-amd64", nil, false, 200, "ELF...amd64"},
		{"HEAD", "/files/mm/bin-amd64", nil, false, 200, ""},
		{"HEAD", "/files/mm/bin-arm64", nil, false, 404, ""},
		{"GET", "/files/mm/bin-amd64", map[string]string{"Range": "bytes=0-0"}, false, 206, "E"},
		{"HEAD", "/files/mm/bin-amd64", nil, true, 405, ""},
		{"GET", "/files/mm/latest-amd64", nil, false, 302, ""},
		{"POST", "/files/mm/bin-amd64", nil, false, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			s.RejectHEAD(tt.noHEAD)
			resp, body := get(t, tt.method, srv.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
		})
	}
	s.SetFile("mm/bin-arm64", []byte("arm"))
	if resp, _ := get(t, "HEAD", srv.URL+"/files/mm/bin-arm64", nil); resp.StatusCode != 200 {
		t.Errorf("after SetFile: %d", resp.StatusCode)
	}
}

func TestRerouteAndCredentials(t *testing.T) {
	s := New(Fixture{GitLab: map[string][]Tag{"g/p": {{Name: "v1"}}}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := &http.Client{Transport: Reroute(srv.URL, nil)}
	req, _ := http.NewRequest("GET", "https://framagit.org/api/v4/projects/g%2Fp/repository/tags/v1", nil)
	req.Header.Set("PRIVATE-TOKEN", "glpat-x")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := s.Credentials(); len(got) != 1 || got[0] != "glpat-x" {
		t.Errorf("credentials %v", got)
	}
}

func TestHold(t *testing.T) {
	s := New(Fixture{Files: map[string][]byte{"a/b.tgz": []byte("tarball")}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	release := s.Hold("a/")
	defer release() // before srv.Close, which waits for the held request
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/files/a/b.tgz")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	select {
	case b := <-got:
		t.Fatalf("a held file answered at once: %q", b)
	case <-time.After(200 * time.Millisecond):
	}
	if resp, err := http.Head(srv.URL + "/files/a/b.tgz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD of a held file: %v %v", resp, err)
	}
	release()
	release() // twice is fine
	if b := <-got; b != "tarball" {
		t.Fatalf("after release: %q", b)
	}
}
