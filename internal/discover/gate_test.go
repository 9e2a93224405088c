package discover

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/platform"
)

func tmpl(t *testing.T, text string) *config.Template {
	t.Helper()
	tm, err := config.ParseTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func plats(t *testing.T, ss ...string) []platform.Platform {
	t.Helper()
	var ps []platform.Platform
	for _, s := range ss {
		p, err := platform.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func ver(v string) Version {
	return Version{Version: v, Semver: semver.MustParse(v), Tag: "v" + v}
}

// mostlymatterRequire is the mostlymatter app's require: from DESIGN.md, with the binaries
// served under /files/ by the fake.
func mostlymatterRequire(t *testing.T) []config.Require {
	return []config.Require{
		{GitLabTag: &config.GitLabTag{Host: "framagit.org", Project: mmProject, Tag: tmpl(t, "v{{.Version}}-limitless")}},
		{URL: tmpl(t, "https://packages.framasoft.org/files/mostlymatter/mostlymatter-{{.Arch}}-v{{.Version}}")},
	}
}

func mostlymatterFixture() fakeupstream.Fixture {
	return fakeupstream.Fixture{
		GitLab: map[string][]fakeupstream.Tag{mmProject: {{Name: "v10.3.1-limitless"}, {Name: "v10.2.0-limitless"}}},
		Files: map[string][]byte{
			"mostlymatter/mostlymatter-amd64-v10.3.1": []byte("amd64 binary"),
			"mostlymatter/mostlymatter-arm64-v10.3.1": []byte("arm64 binary"),
			"mostlymatter/mostlymatter-amd64-v10.2.0": []byte("amd64 binary"),
		},
	}
}

// rerouted is an HTTP client that sends every host to srv.
func rerouted(srv *httptest.Server) *http.Client {
	return &http.Client{Transport: fakeupstream.Reroute(srv.URL, nil)}
}

func TestHTTPGate(t *testing.T) {
	s, srv := fake(t, mostlymatterFixture())
	gate := NewGate(mostlymatterRequire(t), plats(t, "linux/amd64", "linux/arm64"), WithHTTPClient(rerouted(srv)))
	tests := []struct {
		version string
		noHEAD  bool
		want    string
	}{
		{"10.3.1", false, ""},
		{"10.3.1", true, ""}, // HEAD → 405, GET with Range → 206
		{"10.2.0", false, "url https://packages.framasoft.org/files/mostlymatter/mostlymatter-arm64-v10.2.0 (linux/arm64): 404 Not Found"},
		{"9.11.6", false, "gitlab framagit.org framasoft/framateam/mostlymatter: tag v9.11.6-limitless not found"},
	}
	for _, tt := range tests {
		s.RejectHEAD(tt.noHEAD)
		got, err := gate.Check(context.Background(), ver(tt.version))
		if err != nil {
			t.Fatalf("%s: %v", tt.version, err)
		}
		if got != tt.want {
			t.Errorf("%s (no HEAD %v): reason %q\nwant %q", tt.version, tt.noHEAD, got, tt.want)
		}
	}
	if n := s.Hits("/api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags/v10.3.1-limitless"); n != 2 {
		t.Errorf("escaped tag path hit %d times, want 2", n)
	}
}

func TestHTTPGateRedirectAndErrors(t *testing.T) {
	s := fakeupstream.New(fakeupstream.Fixture{
		Files:     map[string][]byte{"real/bin": []byte("x")},
		Redirects: map[string]string{"cdn/bin": "real/bin"},
		GitLab:    map[string][]fakeupstream.Tag{"a/b": {{Name: "v1.0.0"}}},
	})
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/flaky/") && flaky.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // once
		case strings.HasPrefix(r.URL.Path, "/flaky/"):
			r.URL.Path = "/files/real/bin"
			s.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/broken/"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/api/v4/projects/broken"):
			w.WriteHeader(http.StatusBadGateway)
		case strings.HasPrefix(r.URL.Path, "/forbidden/"):
			w.WriteHeader(http.StatusForbidden)
		default:
			s.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		req     config.Require
		want    string // reason
		wantErr string
	}{
		{"redirect followed", config.Require{URL: tmpl(t, "https://dl.example/files/cdn/bin")}, "", ""},
		{"a 5xx once is retried", config.Require{URL: tmpl(t, "https://dl.example/flaky/bin")}, "", ""},
		{"5xx is an error", config.Require{URL: tmpl(t, "https://dl.example/broken/{{.Arch}}?sig=SECRET")}, "",
			"url https://dl.example/broken/amd64?… (linux/amd64): 500 Internal Server Error"},
		{"4xx is a reason", config.Require{URL: tmpl(t, "https://dl.example/forbidden/x")}, "url https://dl.example/forbidden/x (linux/amd64): 403 Forbidden", ""},
		{"not http", config.Require{URL: tmpl(t, "file:///etc/passwd")}, "", "want an http(s) URL"},
		{"template error", config.Require{URL: tmpl(t, "https://x/{{.Nope}}")}, "", "template"},
		{"gitlab 5xx is an error", config.Require{GitLabTag: &config.GitLabTag{Host: "gitlab.example", Project: "broken/x", Tag: tmpl(t, "v{{.Version}}")}}, "",
			"gitlab gitlab.example broken/x: tag v1.0.0: GET /api/v4/projects/broken%2Fx/repository/tags/v1.0.0: 502 Bad Gateway"},
		{"gitlab tag found", config.Require{GitLabTag: &config.GitLabTag{Host: "gitlab.example", Project: "a/b", Tag: tmpl(t, "{{.Tag}}")}}, "", ""},
		{"gitlab bad host", config.Require{GitLabTag: &config.GitLabTag{Host: "x/y", Project: "a/b", Tag: tmpl(t, "{{.Tag}}")}}, "", "want a host name"},
		{"gitlab tag renders empty", config.Require{GitLabTag: &config.GitLabTag{Project: "a/b", Tag: tmpl(t, "")}}, "", "not a tag name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := NewGate([]config.Require{tt.req}, plats(t, "linux/amd64"), WithHTTPClient(rerouted(srv)))
			got, err := gate.Check(context.Background(), ver("1.0.0"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("query in error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("reason %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMostlymatter runs the DESIGN.md mostlymatter app end to end against the fake: GitHub
// releases, a GitLab tag gate on framagit.org, a per-arch binary gate.
func TestMostlymatter(t *testing.T) {
	fx := mostlymatterFixture()
	fx.GitHub = map[string][]fakeupstream.Release{"mattermost/mattermost": {
		{Tag: "v10.5.0", Draft: true},
		{Tag: "v10.4.0-rc1", Prerelease: true, Published: day(2025, 1, 10)},
		{Tag: "v10.3.1", Published: day(2024, 12, 17)},
		{Tag: "v9.11.6", Published: day(2024, 11, 28)},
		{Tag: "v10.2.0", Published: day(2024, 11, 15)},
	}}
	s, srv := fake(t, fx)
	a := &config.App{
		Name:      "mostlymatter",
		Source:    config.Source{GitHub: "mattermost/mattermost"},
		Require:   mostlymatterRequire(t),
		Versions:  &config.Versions{Max: 10, Order: config.OrderPublished},
		Platforms: plats(t, "linux/amd64", "linux/arm64"),
	}
	res, err := ForApp(context.Background(), a, hermetic(WithAPI(srv.URL), WithHTTPClient(rerouted(srv)))...)
	if err != nil {
		t.Fatal(err)
	}
	if versions(res) != "10.3.1" || res.HighestStable != "10.3.1" {
		t.Errorf("versions %q latest %q; skipped %+v", versions(res), res.HighestStable, res.Skipped)
	}
	for tag, want := range map[string]string{
		"v9.11.6": "tag v9.11.6-limitless not found",
		"v10.2.0": "mostlymatter-arm64-v10.2.0 (linux/arm64): 404 Not Found",
	} {
		if got := skipReason(res, tag); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", tag, got, want)
		}
	}
	if s.Hits("/repos/") != 1 {
		t.Errorf("%d GitHub requests", s.Hits("/repos/"))
	}
	// The GitHub API's rate-limit headers come back with the result (serve's metric).
	if u, _ := url.Parse(srv.URL); res.RateLimit == nil || res.RateLimit.Host != u.Host || res.RateLimit.Remaining <= 0 {
		t.Errorf("RateLimit = %+v, want the fake's host %s and its remaining count", res.RateLimit, u.Host)
	}
}
