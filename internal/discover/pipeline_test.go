package discover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
)

func app(name string) *config.App { return &config.App{Name: name} }

func win(max int, order string) config.Versions { return config.Versions{Max: max, Order: order} }

// versions lists a result's versions, space-separated, in window order.
func versions(r Result) string {
	var vs []string
	for _, v := range r.Versions {
		vs = append(vs, v.Version)
	}
	return strings.Join(vs, " ")
}

func skipReason(r Result, tag string) string {
	for _, s := range r.Skipped {
		if s.Tag == tag {
			return s.Reason
		}
	}
	return ""
}

// mattermost is the testdata page as a static source.
func mattermost(t *testing.T) staticSource {
	t.Helper()
	b, err := os.ReadFile("testdata/github_releases_mattermost.json")
	if err != nil {
		t.Fatal(err)
	}
	var rs []ghRelease
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	var out staticSource
	for _, r := range rs {
		out = append(out, Release{Tag: r.TagName, Draft: r.Draft, Prerelease: r.Prerelease, Published: parseTime(r.PublishedAt)})
	}
	return out
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	undated := staticSource{{Tag: "v1.2.0"}, {Tag: "v1.10.0"}, {Tag: "v1.9.3"}}
	tests := []struct {
		name     string
		src      staticSource
		source   config.Source
		win      config.Versions
		want     string // versions in window order
		latest   string
		skipped  map[string]string // tag → reason (substring)
		wantTags map[string]string // version → upstream tag
	}{
		{
			name: "drafts and pre-releases dropped; published order keeps the backport",
			src:  mattermost(t), win: win(10, "published"),
			want: "10.3.1 9.11.6 10.2.0", latest: "10.3.1",
			skipped: map[string]string{"v10.5.0": "draft", "v10.4.0-rc1": "pre-release"},
		},
		{
			name: "semver order",
			src:  mattermost(t), win: win(10, "semver"),
			want: "10.3.1 10.2.0 9.11.6", latest: "10.3.1",
		},
		{
			name: "window by published keeps the backport; latest is still the highest",
			src:  mattermost(t), win: win(2, "published"),
			want: "10.3.1 9.11.6", latest: "10.3.1",
			skipped: map[string]string{"v10.2.0": "outside the window of 2"},
		},
		{
			name: "a backport published last comes first, latest stays the highest semver",
			src: staticSource{
				{Tag: "v9.11.7", Published: day(2025, 1, 20)},
				{Tag: "v10.3.1", Published: day(2024, 12, 17)},
				{Tag: "v10.2.0", Published: day(2024, 11, 15)},
			},
			win:  win(2, ""),
			want: "9.11.7 10.3.1", latest: "10.3.1",
		},
		{
			name: "window by semver drops the backport",
			src:  mattermost(t), win: win(2, "semver"),
			want: "10.3.1 10.2.0", latest: "10.3.1",
			skipped: map[string]string{"v9.11.6": "outside the window of 2"},
		},
		{
			name: "undated releases fall back to semver",
			src:  undated, win: win(10, "published"),
			want: "1.10.0 1.9.3 1.2.0", latest: "1.10.0",
		},
		{
			name: "dated before undated",
			src:  staticSource{{Tag: "v1.0.0"}, {Tag: "v0.9.0", Published: day(2024, 1, 1)}, {Tag: "v2.0.0"}},
			win:  win(10, ""),
			want: "0.9.0 2.0.0 1.0.0", latest: "2.0.0",
		},
		{
			name: "same date: semver breaks the tie",
			src:  staticSource{{Tag: "v1.0.1", Published: day(2024, 1, 1)}, {Tag: "v2.0.1", Published: day(2024, 1, 1)}},
			win:  win(10, ""),
			want: "2.0.1 1.0.1", latest: "2.0.1",
		},
		{
			name:   "-limitless extracted by the version regex",
			src:    staticSource{{Tag: "v10.3.1-limitless"}, {Tag: "v10.3.1"}, {Tag: "v10.2.0-limitless"}},
			source: config.Source{VersionRE: regexp.MustCompile(`^v(\d+\.\d+\.\d+)-limitless$`)},
			win:    win(10, ""),
			want:   "10.3.1 10.2.0", latest: "10.3.1",
			wantTags: map[string]string{"10.3.1": "v10.3.1-limitless"},
			skipped:  map[string]string{"v10.3.1": "does not match version"},
		},
		{
			name:   "named group version, compiled from the source text",
			src:    staticSource{{Tag: "release-2.4.1-final"}, {Tag: "release-2.3.0-final"}},
			source: config.Source{Version: `^release-(\w+-)?(?P<version>\d+\.\d+\.\d+)-final$`},
			win:    win(10, ""),
			want:   "2.4.1 2.3.0", latest: "2.4.1",
		},
		{
			name:    "version regex capturing something that is not a tag",
			src:     staticSource{{Tag: "v1.0.0"}},
			source:  config.Source{Version: `^(v)`},
			win:     win(10, ""),
			skipped: map[string]string{"v1.0.0": "not a version"},
		},
		{
			name:   "include and exclude",
			src:    staticSource{{Tag: "v1.0.0"}, {Tag: "server-v2.0.0"}, {Tag: "v1.1.0"}},
			source: config.Source{Include: `^v`, Exclude: `^v1\.1\.`},
			win:    win(10, ""),
			want:   "1.0.0", latest: "1.0.0",
			skipped: map[string]string{"server-v2.0.0": "does not match include ^v", "v1.1.0": "matches exclude"},
		},
		{
			name: "not versions, semver pre-releases, oddities",
			src: staticSource{{Tag: "latest"}, {Tag: "nightly"}, {Tag: "v1.0.0-rc1"}, {Tag: "vv1.0.0"}, {Tag: "v1.2.3.4"},
				{Tag: "V3.0.0"}, {Tag: "v99999999999999999999.0.0"}, {Tag: "v"}, {Tag: "v2"}, {Tag: "1.27"}},
			win:  win(10, ""),
			want: "3.0.0", latest: "3.0.0",
			skipped: map[string]string{
				"latest": "not a version", "nightly": "not a version", "v1.0.0-rc1": "semver pre-release",
				"vv1.0.0": "not a version", "v1.2.3.4": "not a semantic version", "v99999999999999999999.0.0": "not a semantic version",
				"v": "empty version", "v2": "not a full major.minor.patch version", "1.27": "not a full",
			},
		},
		{
			name: "duplicates keep the most recently published",
			src: staticSource{
				{Tag: "v1.0.0", Published: day(2024, 1, 1)},
				{Tag: "1.0.0", Published: day(2024, 1, 2)},
				{Tag: "v0.9.0", Published: day(2023, 1, 2)},
				{Tag: "0.9.0", Published: day(2023, 1, 1)},
			},
			win:  win(10, ""),
			want: "1.0.0 0.9.0", latest: "1.0.0",
			wantTags: map[string]string{"1.0.0": "1.0.0", "0.9.0": "v0.9.0"},
			skipped:  map[string]string{"v1.0.0": "duplicate of version 1.0.0 (tag 1.0.0", "0.9.0": "duplicate of version 0.9.0 (tag v0.9.0, published later)"},
		},
		{
			name: "undated duplicates keep the first seen",
			src:  staticSource{{Tag: "v1.0.0"}, {Tag: "1.0.0"}},
			win:  win(10, ""),
			want: "1.0.0", latest: "1.0.0",
			wantTags: map[string]string{"1.0.0": "v1.0.0"},
			skipped:  map[string]string{"1.0.0": "duplicate"},
		},
		{
			name: "constraint",
			src:  mattermost(t), win: config.Versions{Max: 10, Constraint: ">= 10.0"},
			want: "10.3.1 10.2.0", latest: "10.3.1",
			skipped: map[string]string{"v9.11.6": "outside constraint >= 10.0"},
		},
		{
			name: "max 0 is the default window",
			src:  manyStatic(15), win: win(0, ""),
			want: "1.15.0 1.14.0 1.13.0 1.12.0 1.11.0 1.10.0 1.9.0 1.8.0 1.7.0 1.6.0", latest: "1.15.0",
		},
		{
			name: "empty upstream",
			src:  nil, win: win(10, ""),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &config.App{Name: "app", Source: tt.source}
			res, err := Discover(ctx, tt.src, a, tt.win, nil, hermetic()...)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(res); got != tt.want {
				t.Errorf("versions %q, want %q", got, tt.want)
			}
			if res.HighestStable != tt.latest {
				t.Errorf("latest %q, want %q", res.HighestStable, tt.latest)
			}
			for tag, reason := range tt.skipped {
				if got := skipReason(res, tag); !strings.Contains(got, reason) || got == "" {
					t.Errorf("skip %s: reason %q, want %q", tag, got, reason)
				}
			}
			for _, v := range res.Versions {
				if want, ok := tt.wantTags[v.Version]; ok && v.Tag != want {
					t.Errorf("version %s: tag %s, want %s", v.Version, v.Tag, want)
				}
				if !ValidTag(v.Version) || !ValidTag(v.Tag) || v.Semver == nil {
					t.Errorf("invalid version %+v", v)
				}
			}
			// Every release is accounted for exactly once.
			if n := len(res.Versions) + len(res.Skipped); n != len(tt.src) {
				t.Errorf("%d versions + %d skipped != %d releases: %+v", len(res.Versions), len(res.Skipped), len(tt.src), res.Skipped)
			}
		})
	}
}

func manyStatic(n int) staticSource {
	var s staticSource
	for i := n; i >= 1; i-- {
		s = append(s, Release{Tag: fmt.Sprintf("v1.%d.0", i)})
	}
	return s
}

func TestDiscoverHostileTags(t *testing.T) {
	hostile := []string{
		"v1.0.0;rm -rf /",
		"{{.Version}}",
		"v{{ref \"x\"}}",
		"$(id)",
		"`id`",
		"../../etc",
		"v1.0.0/../../x",
		"v1.0.0 ",
		"v1.0.0\n",
		"v1.0.0\x00",
		"-v1.0.0",
		".v1.0.0",
		"\u0432" + "1.0.0",  // Cyrillic ve
		"v1.0.0\u200b",      // zero-width space
		"v\uff11.0.0",       // fullwidth digit one
		"v1.0.0" + "\u0456", // Cyrillic i
		strings.Repeat("a", 129),
		"v1.0.0-" + strings.Repeat("x", 1<<20),
	}
	src := staticSource{{Tag: "v1.0.0", Published: day(2024, 1, 1)}}
	for _, h := range hostile {
		src = append(src, Release{Tag: h, Published: day(2024, 2, 1)})
	}
	l, logs := testLogger()
	res, err := Discover(context.Background(), src, app("app"), win(10, ""), nil, WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	if versions(res) != "1.0.0" {
		t.Errorf("versions %q", versions(res))
	}
	if len(res.Skipped) != len(hostile) {
		t.Fatalf("%d skipped, want %d", len(res.Skipped), len(hostile))
	}
	for _, s := range res.Skipped {
		if s.Reason != "not a valid OCI tag" {
			t.Errorf("%s: reason %q", s.Tag, s.Reason)
		}
		if len(s.Tag) > 100 || strings.ContainsAny(s.Tag, "\n\x00") || !strings.HasPrefix(s.Tag, `"`) {
			t.Errorf("skip tag not sanitised: %.120q", s.Tag)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != len(hostile) {
		t.Errorf("%d warnings, want %d", n, len(hostile))
	}
	if len(logs.String()) > 64<<10 {
		t.Errorf("logs carry the hostile payload: %d bytes", len(logs.String()))
	}
}

func TestDiscoverSourceError(t *testing.T) {
	src := sourceFunc(func(context.Context) ([]Release, error) {
		return nil, errors.New("github acme/app: releases page 2: boom")
	})
	_, err := Discover(context.Background(), src, app("acme"), win(10, ""), nil)
	if err == nil || err.Error() != "discover acme: github acme/app: releases page 2: boom" {
		t.Errorf("err = %v", err)
	}
	_, err = Discover(context.Background(), staticSource{}, app("acme"), win(10, "newest"), nil)
	if err == nil || !strings.Contains(err.Error(), `order "newest"`) {
		t.Errorf("bad order: %v", err)
	}
	_, err = Discover(context.Background(), staticSource{}, &config.App{Name: "acme", Source: config.Source{Include: "("}}, win(10, ""), nil)
	if err == nil || !strings.Contains(err.Error(), "discover acme: include") {
		t.Errorf("bad regex: %v", err)
	}
	_, err = Discover(context.Background(), staticSource{}, &config.App{Name: "acme", Require: []config.Require{{}}}, win(10, ""), nil)
	if err == nil || !strings.Contains(err.Error(), "no gate checker") {
		t.Errorf("require without gate: %v", err)
	}
}

type sourceFunc func(context.Context) ([]Release, error)

func (f sourceFunc) Releases(ctx context.Context) ([]Release, error) { return f(ctx) }

func TestDiscoverGatesLazy(t *testing.T) {
	tests := []struct {
		name      string
		n, max    int
		fail      map[string]bool // versions the gate rejects
		want      string
		wantCalls int64
	}{
		{"all pass: only the window is checked", 20, 3, nil, "1.20.0 1.19.0 1.18.0", 3},
		{"one fails: one more is checked", 20, 3, map[string]bool{"1.19.0": true}, "1.20.0 1.18.0 1.17.0", 4},
		{"many fail", 20, 3, map[string]bool{"1.20.0": true, "1.19.0": true, "1.18.0": true, "1.17.0": true}, "1.16.0 1.15.0 1.14.0", 7},
		{"fewer candidates than the window", 4, 10, map[string]bool{"1.2.0": true}, "1.4.0 1.3.0 1.1.0", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			gate := GateFunc(func(ctx context.Context, v Version) (string, error) {
				calls.Add(1)
				if tt.fail[v.Version] {
					return "url x: 404 Not Found", nil
				}
				return "", nil
			})
			a := &config.App{Name: "app", Require: []config.Require{{}}}
			res, err := Discover(context.Background(), manyStatic(tt.n), a, win(tt.max, ""), gate, hermetic()...)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(res); got != tt.want {
				t.Errorf("versions %q, want %q", got, tt.want)
			}
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d gate checks, want %d", calls.Load(), tt.wantCalls)
			}
			for v := range tt.fail {
				if r := skipReason(res, "v"+v); r != "url x: 404 Not Found" && calls.Load() > 0 {
					if r == "" || !strings.Contains(r, "window") {
						t.Errorf("v%s: reason %q", v, r)
					}
				}
			}
			if len(res.Versions)+len(res.Skipped) != tt.n {
				t.Errorf("releases not all accounted for")
			}
		})
	}
}

func TestDiscoverGateConcurrencyAndErrors(t *testing.T) {
	var inFlight, peak atomic.Int64
	var mu sync.Mutex
	gate := GateFunc(func(ctx context.Context, v Version) (string, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		mu.Lock()
		peak.Store(max(peak.Load(), n))
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		return "", nil
	})
	a := &config.App{Name: "app", Require: []config.Require{{}}}
	res, err := Discover(context.Background(), manyStatic(30), a, win(20, ""), gate, hermetic()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Versions) != 20 || peak.Load() > gateConcurrency || peak.Load() < 2 {
		t.Errorf("%d versions, peak concurrency %d", len(res.Versions), peak.Load())
	}

	failing := GateFunc(func(ctx context.Context, v Version) (string, error) {
		if v.Version == "1.4.0" {
			return "", errors.New("gitlab framagit.org a/b: tag v1.4.0: GET /x: 502 Bad Gateway")
		}
		return "", nil
	})
	_, err = Discover(context.Background(), manyStatic(5), a, win(10, ""), failing, hermetic()...)
	if want := "discover app: require: version 1.4.0: gitlab framagit.org a/b: tag v1.4.0: GET /x: 502 Bad Gateway"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant   %s", err, want)
	}
}

func TestValidTag(t *testing.T) {
	tests := map[string]bool{
		"v1.0.0": true, "1.0.0": true, "_x": true, "a": true, strings.Repeat("a", 128): true,
		"": false, ".x": false, "-x": false, "a/b": false, "a b": false, "a:b": false, "a+b": false,
		strings.Repeat("a", 129): false, "v1.0.0\n": false, "\u0432": false,
	}
	for s, want := range tests {
		if got := ValidTag(s); got != want {
			t.Errorf("ValidTag(%.20q) = %v, want %v", s, got, want)
		}
	}
}
