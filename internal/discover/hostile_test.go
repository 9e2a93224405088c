package discover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
)

// ociTag is the OCI distribution spec's tag grammar, written out again here rather than
// borrowed from the code under test.
var ociTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// TestHostileUpstream serves hostile releases and hostile API answers to real sources and runs
// discovery on them. Every case ends either with the hostile tags skipped, for a reason the log
// states too, or with an error that names the source; never with a panic, and never with a
// version that is not a valid OCI tag and a canonical, stable semver.
func TestHostileUpstream(t *testing.T) {
	big := strings.Repeat("A", 1<<20)
	good := fakeupstream.Release{Tag: "v1.0.0", Published: day(2024, 1, 1)}
	rel := func(tag string) fakeupstream.Release {
		return fakeupstream.Release{Tag: tag, Published: day(2024, 2, 1)}
	}
	releases := func(tags ...string) []fakeupstream.Release {
		out := []fakeupstream.Release{good}
		for _, tag := range tags {
			out = append(out, rel(tag))
		}
		return out
	}
	tags := func(names ...string) []fakeupstream.Tag {
		out := []fakeupstream.Tag{{Name: "v1.0.0", Committed: day(2024, 1, 1)}}
		for _, n := range names {
			out = append(out, fakeupstream.Tag{Name: n, Committed: day(2024, 2, 1)})
		}
		return out
	}
	jsonBody := func(body string) func(other string) http.HandlerFunc {
		return func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
			}
		}
	}
	const notOCI = "not a valid OCI tag"

	tests := []struct {
		name     string
		gitlab   bool
		releases []fakeupstream.Release // served by the fake GitHub API, when handler is nil
		tags     []fakeupstream.Tag     // served by the fake GitLab API, when handler is nil
		// handler answers the API instead of the fake; other is the URL of another host,
		// which must see no credentials (and, unless otherOK, no request at all).
		handler func(other string) http.HandlerFunc
		otherOK bool
		source  config.Source

		want     string            // versions, in window order
		wantTags map[string]string // version → upstream tag
		skipped  map[string]string // displayed tag → reason (substring), each also in the log
		logs     []string          // more log substrings
		wantErr  string            // the error, after the source's name
	}{
		{
			name:     "shell metacharacters",
			releases: releases("v1.0.1;rm -rf /", "$(id)", "v1.0.2$(id)", "`id`", "v1.0.3|sh", "v1.0.4&&true", "v1.0.5>x"),
			want:     "1.0.0",
			skipped: map[string]string{`"v1.0.1;rm -rf /"`: notOCI, `"$(id)"`: notOCI, `"v1.0.2$(id)"`: notOCI, "\"`id`\"": notOCI,
				`"v1.0.3|sh"`: notOCI, `"v1.0.4&&true"`: notOCI, `"v1.0.5>x"`: notOCI},
		},
		{
			name:     "Go template syntax",
			releases: append(releases("{{.Env}}", "v{{.Version}}", `{{ref "x"}}`), fakeupstream.Release{Tag: "v1.1.0", Name: "{{.Env.GITHUB_TOKEN}}", Body: "{{range 100000000}}x{{end}}", Published: day(2024, 3, 1)}),
			want:     "1.1.0 1.0.0",
			skipped:  map[string]string{`"{{.Env}}"`: notOCI, `"v{{.Version}}"`: notOCI, `"{{ref \"x\"}}"`: notOCI},
		},
		{
			name:     "path metacharacters, NUL and newline",
			releases: releases("../../etc/passwd", "v1.0.0/..", "..", "v1.0.1\x00", "v1.0.2\n", "v1.0.3\r\nX-Injected: 1", "/v1.0.4", `v1.0.5\..`),
			want:     "1.0.0",
			skipped: map[string]string{`"../../etc/passwd"`: notOCI, `"v1.0.0/.."`: notOCI, `".."`: notOCI, `"v1.0.1\x00"`: notOCI,
				`"v1.0.2\n"`: notOCI, `"v1.0.3\r\nX-Injected: 1"`: notOCI, `"/v1.0.4"`: notOCI, `"v1.0.5\\.."`: notOCI},
		},
		{
			name: "unicode look-alikes",
			releases: releases(
				"v\uff11.\uff10.\uff10", // fullwidth digits
				"\u0432"+"2.0.0",        // Cyrillic ve
				"v2.0.0"+"\u0456",       // Cyrillic i
				"v2.0.1\u200d",          // zero-width joiner
				"\u202ev2.0.2",          // right-to-left override
				"v2.0.3\u00a0",          // no-break space
				"v\u0661.0.0",           // Arabic-Indic digit one
			),
			want: "1.0.0",
			skipped: map[string]string{`"v\uff11.\uff10.\uff10"`: notOCI, `"\u04322.0.0"`: notOCI, `"v2.0.0\u0456"`: notOCI,
				`"v2.0.1\u200d"`: notOCI, `"\u202ev2.0.2"`: notOCI, `"v2.0.3\u00a0"`: notOCI, `"v\u0661.0.0"`: notOCI},
		},
		{
			name:     "1 MB tag name",
			releases: releases("v1.0.1-" + big),
			want:     "1.0.0",
			skipped:  map[string]string{`"v1.0.1-` + strings.Repeat("A", 57) + fmt.Sprintf(`"… (%d bytes)`, len("v1.0.1-"+big)): notOCI},
		},
		{
			name:     "1 MB release name and body, 1 MB commitish",
			releases: []fakeupstream.Release{good, {Tag: "v2.0.0", Name: big, Body: big, Commitish: "main;" + big, Published: day(2024, 2, 1)}},
			want:     "2.0.0 1.0.0",
		},
		{
			name:     "duplicate versions: the greater tag is kept",
			releases: []fakeupstream.Release{{Tag: "v1.0.0", Published: day(2024, 1, 1)}, {Tag: "1.0.0", Published: day(2024, 1, 1)}},
			want:     "1.0.0", wantTags: map[string]string{"1.0.0": "v1.0.0"},
			skipped: map[string]string{"1.0.0": "duplicate of version 1.0.0 (tag v1.0.0)"},
			logs:    []string{`level=INFO msg="ignoring upstream tag" tag=1.0.0 reason="duplicate of version 1.0.0 (tag v1.0.0)" version=1.0.0 kept=v1.0.0`},
		},
		{
			name:     "duplicate versions listed the other way round: the same one is kept",
			releases: []fakeupstream.Release{{Tag: "1.0.0", Published: day(2024, 1, 1)}, {Tag: "v1.0.0", Published: day(2024, 1, 1)}},
			want:     "1.0.0", wantTags: map[string]string{"1.0.0": "v1.0.0"},
			skipped: map[string]string{"1.0.0": "duplicate of version 1.0.0 (tag v1.0.0)"},
			logs:    []string{`level=INFO msg="ignoring upstream tag" tag=1.0.0 reason="duplicate of version 1.0.0 (tag v1.0.0)" version=1.0.0 kept=v1.0.0`},
		},
		{
			name:     "duplicate versions: the later published is kept",
			releases: []fakeupstream.Release{{Tag: "v1.0.0", Published: day(2024, 1, 1)}, {Tag: "1.0.0", Published: day(2024, 1, 2)}},
			want:     "1.0.0", wantTags: map[string]string{"1.0.0": "1.0.0"},
			skipped: map[string]string{"v1.0.0": "duplicate of version 1.0.0 (tag 1.0.0, published later)"},
			logs:    []string{`level=INFO msg="ignoring upstream tag" tag=v1.0.0 reason="duplicate of version 1.0.0 (tag 1.0.0, published later)" version=1.0.0 kept=1.0.0`},
		},
		{
			name:     "the same version with leading zeros",
			releases: releases("v01.0.0", "v1.00.0", "1.0.00"),
			want:     "1.0.0",
			skipped: map[string]string{"v01.0.0": "not a canonical semantic version", "v1.00.0": "not a canonical semantic version",
				"1.0.00": "not a canonical semantic version"},
		},
		{
			name:     "semver look-alikes",
			releases: append(releases("v1.0.1+evil", "v2.0.0-rc.1", "v1.0.0.0", "v2", "latest"), fakeupstream.Release{Tag: "V1.0.0", Published: good.Published}),
			want:     "1.0.0", wantTags: map[string]string{"1.0.0": "v1.0.0"},
			skipped: map[string]string{`"v1.0.1+evil"`: notOCI, "v2.0.0-rc.1": "semver pre-release", "v1.0.0.0": "not a semantic version",
				"v2": "not a full major.minor.patch", "latest": "not a version", "V1.0.0": "duplicate of version 1.0.0 (tag v1.0.0)"},
		},
		{
			name:     "a version regex that captures something that is not a tag",
			releases: []fakeupstream.Release{{Tag: "r.1.0.0", Published: day(2024, 1, 1)}, {Tag: "r-1.0.0", Published: day(2024, 1, 2)}},
			source:   config.Source{Version: `^r(.*)$`},
			skipped:  map[string]string{"r.1.0.0": `version ".1.0.0" is not a valid OCI tag`, "r-1.0.0": `version "-1.0.0" is not a valid OCI tag`},
		},
		{
			name:    "missing and null tag names",
			handler: jsonBody(`[{"tag_name":"v1.0.0"},{"name":"no tag"},{"tag_name":null},{"tag_name":""}]`),
			want:    "1.0.0",
			skipped: map[string]string{`""`: notOCI},
		},
		{
			name:    "deeply nested arrays",
			handler: jsonBody(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)),
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: 200 OK: invalid JSON: invalid character '[' exceeded max depth",
		},
		{
			name:    "deeply nested field nobody reads",
			handler: jsonBody(`[{"tag_name":"v1.0.0","x":` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `}]`),
			want:    "1.0.0",
		},
		{
			name: "body larger than the limit",
			handler: func(string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`[{"tag_name":"v1.0.0","body":"`))
					chunk := []byte(strings.Repeat("A", 1<<20))
					for range 33 {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
					_, _ = w.Write([]byte(`"}]`))
				}
			},
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: 200 OK: body larger than 32 MiB",
		},
		{
			name:    "more releases on a page than asked for",
			handler: jsonBody("[" + strings.Repeat(`{"tag_name":"x"},`, 100) + `{"tag_name":"x"}]`),
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: 101 releases on a page of 100",
		},
		{
			name: "HTML error page",
			handler: func(string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					_, _ = w.Write([]byte("<html><body><h1>We're down</h1><script>alert(1)</script></body></html>"))
				}
			},
			wantErr: `github acme/app: releases page 1: GET /repos/acme/app/releases: 200 OK: not JSON (Content-Type "text/html"; body starts "<html><body><h1>We're down</h1><"… (70 bytes))`,
		},
		{
			name:    "HTML error page labelled JSON",
			handler: jsonBody("<html><body>Bad gateway</body></html>"),
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: 200 OK: invalid JSON",
		},
		{
			name:    "truncated JSON",
			handler: jsonBody(`[{"tag_name":"v1.0.0"},{"tag_na`),
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: 200 OK: truncated JSON (31 bytes)",
		},
		{
			name:    "wrong shape",
			handler: jsonBody(`{"message":"v1.0.0"}`),
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: want a JSON array of releases",
		},
		{
			name: "redirect to another host: refused, the token stays home",
			handler: func(other string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other+r.URL.RequestURI(), http.StatusTemporaryRedirect)
				}
			},
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: redirect from 127.0.0.1:",
		},
		{
			name:   "gitlab: redirect to another host: refused, the token stays home",
			gitlab: true,
			handler: func(other string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other+r.URL.RequestURI(), http.StatusFound)
				}
			},
			wantErr: "tags page 1: GET /api/v4/projects/framasoft%2Fframateam%2Fmostlymatter/repository/tags: redirect from 127.0.0.1:",
		},
		{
			name: "redirect loop",
			handler: func(string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, r.URL.Path+"?n=x"+r.URL.Query().Get("n"), http.StatusFound)
				}
			},
			wantErr: "github acme/app: releases page 1: GET /repos/acme/app/releases: stopped after 10 redirects",
		},
		{
			name: "Link pagination to another host",
			handler: func(other string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Link", "<"+other+`/repos/acme/app/releases?page=2>; rel="next"`)
					jsonBody(`[{"tag_name":"v1.0.0"}]`)("")(w, r)
				}
			},
			wantErr: "github acme/app: releases page 2: refusing to follow http://127.0.0.1:",
		},
		{
			name:   "gitlab: Link pagination to another host",
			gitlab: true,
			handler: func(other string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Link", "<"+other+`/api/v4/projects/x/repository/tags?page=2>; rel="next"`)
					jsonBody(`[{"name":"v1.0.0"}]`)("")(w, r)
				}
			},
			wantErr: "gitlab framagit.org " + mmProject + ": tags page 2: refusing to follow http://127.0.0.1:",
		},
		{
			name:   "gitlab: a next page that is not a number",
			gitlab: true,
			handler: func(string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Next-Page", "2;rm -rf /")
					jsonBody(`[{"name":"v1.0.0"}]`)("")(w, r)
				}
			},
			wantErr: `gitlab framagit.org ` + mmProject + `: tags page 1: X-Next-Page "2;rm -rf /": not a page number`,
		},
		{
			name:   "gitlab: hostile tag names",
			gitlab: true,
			tags:   tags("v1.0.1;id", "{{.Env}}", "../../x", "v\uff12.0.0", "v1.0.2\n", "v01.0.0"),
			want:   "1.0.0",
			skipped: map[string]string{`"v1.0.1;id"`: notOCI, `"{{.Env}}"`: notOCI, `"../../x"`: notOCI, `"v\uff12.0.0"`: notOCI,
				`"v1.0.2\n"`: notOCI, "v01.0.0": "not a canonical semantic version"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The other host: it serves the same fixture, and records what it was sent.
			fx := fakeupstream.Fixture{
				GitHub: map[string][]fakeupstream.Release{"acme/app": {good}},
				GitLab: map[string][]fakeupstream.Tag{mmProject: {{Name: "v1.0.0"}}},
			}
			other, otherSrv := fake(t, fx)
			var api http.Handler
			if tt.handler != nil {
				api = tt.handler(otherSrv.URL)
			} else {
				fx.GitHub["acme/app"], fx.GitLab[mmProject] = tt.releases, tt.tags
				api = fakeupstream.New(fx)
			}
			apiSrv := httptest.NewServer(api)
			defer apiSrv.Close()

			l, logs := testLogger()
			opts := []Option{WithLogger(l), WithAPI(apiSrv.URL), WithBaseURL(apiSrv.URL), WithToken("TOPSECRET"), WithClock(newFakeClock())}
			var src Source = NewGitHub("acme/app", opts...)
			served := len(tt.releases)
			if tt.gitlab {
				src, served = NewGitLab("framagit.org", mmProject, opts...), len(tt.tags)
			}
			res, err := Discover(context.Background(), src, &config.App{Name: "app", Source: tt.source}, win(10, ""), nil, opts...)

			if creds := other.Credentials(); len(creds) != 0 {
				t.Errorf("the other host was sent credentials: %d values", len(creds))
			}
			if n := other.Requests.Load(); n != 0 && !tt.otherOK {
				t.Errorf("the other host was sent %d requests", n)
			}
			if len(logs.String()) > 64<<10 {
				t.Errorf("the log carries the hostile payload: %d bytes", len(logs.String()))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "discover app: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %.300v\nwant it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "TOPSECRET") || len(err.Error()) > 1000 {
					t.Errorf("error carries the token or the payload: %.300v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %.300v", err)
			}

			if got := versions(res); got != tt.want {
				t.Errorf("versions %q, want %q", got, tt.want)
			}
			for _, v := range res.Versions {
				sv, err := semver.StrictNewVersion(v.Version)
				if !ociTag.MatchString(v.Version) || !ociTag.MatchString(v.Tag) || err != nil || sv.String() != v.Version ||
					sv.Prerelease() != "" || v.Semver == nil || !v.Semver.Equal(sv) {
					t.Errorf("version %q (tag %q) is not a valid OCI tag and canonical stable semver", v.Version, v.Tag)
				}
				if want, ok := tt.wantTags[v.Version]; ok && v.Tag != want {
					t.Errorf("version %s: tag %s, want %s", v.Version, v.Tag, want)
				}
				if len(v.Commit) > 255 || strings.ContainsAny(v.Commit, ";\n\x00 ") {
					t.Errorf("version %s: commit %.40q not dropped", v.Version, v.Commit)
				}
			}
			for tag, reason := range tt.skipped {
				if got := skipReason(res, tag); got == "" || !strings.Contains(got, reason) {
					t.Errorf("skip %s: reason %q, want %q", tag, got, reason)
				}
				if line := logged("tag", tag, "reason", skipReason(res, tag)); !strings.Contains(logs.String(), line) {
					t.Errorf("skip %s: the log does not say %s:\n%s", tag, line, logs)
				}
			}
			for _, s := range tt.logs {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("the log does not say %q:\n%s", s, logs)
				}
			}
			for _, s := range res.Skipped {
				if s.Reason == "" || len(s.Tag) > 100 || strings.ContainsAny(s.Tag, "\n\r\x00") || (!ociTag.MatchString(s.Tag) && !strings.HasPrefix(s.Tag, `"`)) {
					t.Errorf("skip %.120q: reason %q: not sanitised", s.Tag, s.Reason)
				}
			}
			if tt.handler == nil {
				if n := len(res.Versions) + len(res.Skipped); n != served {
					t.Errorf("%d versions + %d skipped != %d releases served", len(res.Versions), len(res.Skipped), served)
				}
			}
		})
	}
}

// TestHostileVersionsStayTags runs hostile tags through every version regex shape and checks
// the one property the rest of archmirror relies on: what comes out is a tag and a semver.
func TestHostileVersionsStayTags(t *testing.T) {
	hostile := []string{"v1.0.0;id", "v1.0.0/..", "v01.0.0", "v1.0.0\n", "v1.0.0+x", "{{.Env}}", "v1.0.0-" + strings.Repeat("x", 200)}
	var src staticSource
	for i, h := range hostile {
		src = append(src, Release{Tag: h, Published: day(2024, 1, 1).Add(time.Duration(i) * time.Hour)})
	}
	for _, re := range []string{"", `^v(.*)$`, `(?P<version>.*)`, `^(.*)$`} {
		res, err := Discover(context.Background(), src, &config.App{Name: "app", Source: config.Source{Version: re}}, win(10, ""), nil, hermetic()...)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Versions) != 0 {
			b, _ := json.Marshal(res.Versions)
			t.Errorf("version %q: accepted %s", re, b)
		}
		if len(res.Skipped) != len(hostile) {
			t.Errorf("version %q: %d skipped, want %d", re, len(res.Skipped), len(hostile))
		}
	}
}

// logged is how the test logger writes attrs: what a log line must contain.
func logged(attrs ...any) string {
	var b bytes.Buffer
	drop := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
			return slog.Attr{}
		}
		return a
	}
	slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: drop})).Info("", attrs...)
	return strings.TrimSpace(b.String())
}
