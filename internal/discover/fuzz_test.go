package discover

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/hostlimit"
)

// FuzzVersionFromTag feeds arbitrary tags through version extraction, with and without a
// version regex. It must never panic, and whatever it accepts must be a valid OCI tag (both
// the upstream tag and the extracted version) and a stable semver.
func FuzzVersionFromTag(f *testing.F) {
	for _, s := range []string{"v1.0.0", "10.3.1", "v10.3.1-limitless", "{{.Version}}", "$(id)", "v1.0.0;rm -rf /", "../../etc", "\u0432" + "1.0.0", "v01.0.0", "v1.0.0+x"} {
		f.Add(s)
	}
	res := []*regexp.Regexp{
		nil,
		regexp.MustCompile(`^v(\d+\.\d+\.\d+)-limitless$`),
		regexp.MustCompile(`(?P<version>[^/]+)$`),
		regexp.MustCompile(`(.*)`),
	}
	f.Fuzz(func(t *testing.T, tag string) {
		for _, re := range res {
			version, sv, reason := versionFromTag(tag, re)
			if reason != "" {
				if version != "" || sv != nil {
					t.Fatalf("%q: rejected (%s) but returned %q", tag, reason, version)
				}
				continue
			}
			if !ValidTag(tag) || !ociTagRE.MatchString(tag) {
				t.Fatalf("accepted tag %q is not a valid OCI tag", tag)
			}
			if !ValidTag(version) || !ociTagRE.MatchString(version) {
				t.Fatalf("%q: accepted version %q is not a valid OCI tag", tag, version)
			}
			if sv == nil || sv.Prerelease() != "" {
				t.Fatalf("%q: accepted version %q is not a stable semver", tag, version)
			}
			// One version, one spelling: "01.0.0" would be a second image of 1.0.0.
			if strict, err := semver.StrictNewVersion(version); err != nil || strict.String() != version || !strict.Equal(sv) {
				t.Fatalf("%q: accepted version %q is not a canonical semver (%v)", tag, version, err)
			}
			if d := displayTag(tag); d != tag {
				t.Fatalf("valid tag %q displayed as %q", tag, d)
			}
		}
		if d := displayTag(tag); len(d) > 64*10+8 {
			t.Fatalf("display of %d-byte tag is %d bytes", len(tag), len(d))
		}
	})
}

// FuzzDecodePage feeds arbitrary bodies to the page checks and decoders of both APIs: errors
// are fine, panics are not.
func FuzzDecodePage(f *testing.F) {
	for _, p := range []string{"testdata/github_releases_mattermost.json", "testdata/gitlab_tags_mostlymatter.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"tag_name":null,"published_at":"yesterday","commit":[]}]`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSON("application/json", body) != nil {
			return
		}
		_, _ = decodeGitHubReleases(body)
		_, _ = decodeGitLabTags(body)
		_ = apiMessage(body)
	})
}

// fuzzStatuses are the answers FuzzFetchPage picks from: success, the cache's 304, the rate
// limits, plain errors. (5xx go to the retry policy, which sleeps on a real clock.)
var fuzzStatuses = []int{200, 200, 304, 403, 404, 429, 401, 410}

// FuzzFetchPage answers a GitHub source, for every request, with one arbitrary response: a
// status, the headers that drive rate limits and pagination, a body. Whatever it is, discovery
// ends with versions that are valid OCI tags and canonical stable semvers, or an error that
// names the source; it never panics, never sleeps past its bound, and never sends a request
// off the API host.
func FuzzFetchPage(f *testing.F) {
	page, err := os.ReadFile("testdata/github_releases_mattermost.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), "application/json", "", "", "", "", page)
	f.Add(uint8(0), "application/json", "", "", "", `<https://api.example/repos/acme/app/releases?page=2>; rel="next"`, []byte(`[{"tag_name":"v1.0.0"},{"tag_name":"1.0.0"},{"tag_name":"v01.0.0"}]`))
	f.Add(uint8(0), "application/json", "", "", "", `<https://evil.example/x>; rel="next"`, []byte(`[]`))
	f.Add(uint8(3), "application/json", "", "0", "1741086060", "", []byte(`{"message":"API rate limit exceeded"}`))
	f.Add(uint8(3), "application/json", "", "", "", "", []byte(`{"message":"You have exceeded a secondary rate limit."}`))
	f.Add(uint8(5), "text/plain", "Tue, 04 Mar 2025 11:00:30 GMT", "", "", "", []byte("slow down"))
	f.Add(uint8(0), "text/html", "", "", "", "", []byte("<html>"))
	f.Fuzz(func(t *testing.T, status uint8, contentType, retryAfter, remaining, reset, link string, body []byte) {
		const maxWait = 2 * time.Minute
		var requests int
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			requests++
			if req.URL.Host != "api.example" {
				t.Fatalf("request sent off the API host: %s", req.URL.Redacted())
			}
			h := http.Header{}
			for k, v := range map[string]string{"Content-Type": contentType, "Retry-After": retryAfter,
				"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset, "Link": link} {
				if v != "" {
					h.Set(k, v)
				}
			}
			code := fuzzStatuses[int(status)%len(fuzzStatuses)]
			return &http.Response{StatusCode: code, Status: http.StatusText(code), Header: h, ContentLength: -1,
				Body: io.NopCloser(bytes.NewReader(body)), Request: req}, nil
		})
		clock := newFakeClock()
		opts := hermetic(WithAPI("https://api.example"), WithClock(clock), WithRateLimitWait(maxWait),
			WithHTTPClient(&http.Client{Transport: rt}), WithHostLimit(hostlimit.New(0)))
		res, err := Discover(context.Background(), NewGitHub("acme/app", opts...), &config.App{Name: "app"}, config.Versions{Max: 1000}, nil, opts...)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "discover app: github acme/app: ") {
				t.Fatalf("error does not name the source: %v", err)
			}
		}
		for _, v := range res.Versions {
			sv, serr := semver.StrictNewVersion(v.Version)
			if !ValidTag(v.Version) || !ValidTag(v.Tag) || serr != nil || sv.String() != v.Version || sv.Prerelease() != "" {
				t.Fatalf("version %q (tag %q) is not a valid OCI tag and canonical stable semver", v.Version, v.Tag)
			}
			if !validCommitish(v.Commit) {
				t.Fatalf("version %s: commit %q", v.Version, v.Commit)
			}
		}
		if clock.total() > (rateLimitRetries+1)*maxWait {
			t.Fatalf("slept %v", clock.total())
		}
		if requests > 10*(rateLimitRetries+1) {
			t.Fatalf("%d requests", requests)
		}
	})
}
