package build

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/archmirror/archmirror/internal/config"
)

// hostile are the upstream strings issue 7 names: each must be refused or passed on as inert
// text, never followed as a path, run, or expanded again.
var hostile = map[string]string{
	"traversal": "../../x",
	"shell":     "v1;rm -rf /",
	"template":  "{{.Env.X}}",
	"huge":      strings.Repeat("1", 1<<20),
}

// Every string of a Spec is checked before anything is read or dialled: a 1 MB value, a NUL, a
// control character where a line is expected, invalid UTF-8, a push name that is a list. The
// error names what was refused, quoted and cut short.
func TestCheckRefusesHostileStrings(t *testing.T) {
	ok := Spec{JobID: "app/app/1.0.0/linux-amd64", Platform: amd64, Context: "/src", Output: Output{Push: "127.0.0.1:5000/mirror/app"},
		Args:   map[string]string{"PACKAGE": "https://example.com/app-1.0.0.tar.gz", "NOTES": "multi\nline"},
		Labels: map[string]string{"org.opencontainers.image.version": "1.0.0"}}
	if err := check(ok); err != nil {
		t.Fatal(err)
	}
	huge := hostile["huge"]
	for _, tt := range []struct {
		name string
		edit func(*Spec)
		err  string
	}{
		{"huge job ID", func(s *Spec) { s.JobID = "app/app/" + huge + "/linux-amd64" }, "job ID is 1048596 bytes, more than 512: refused"},
		{"job ID with a newline", func(s *Spec) { s.JobID = "app/app/1.0.0\nok: all good/linux-amd64" }, `job ID "app/app/1.0.0\nok: all good/linux-amd64" contains control characters`},
		{"huge build arg", func(s *Spec) { s.Args = map[string]string{"PACKAGE": huge} }, `build arg "PACKAGE" is 1048576 bytes, more than 65536`},
		{"NUL in a build arg", func(s *Spec) { s.Args = map[string]string{"PACKAGE": "a\x00b"} }, `build arg "PACKAGE" "a\x00b" contains a NUL byte`},
		{"invalid UTF-8 label", func(s *Spec) { s.Labels = map[string]string{"org.opencontainers.image.version": "1.0.0\xff"} }, `label "org.opencontainers.image.version" "1.0.0\xff" is not valid UTF-8`},
		{"escape in a label", func(s *Spec) {
			s.Labels = map[string]string{"io.archmirror.upstream.ref": "v1\x1b]0;pwned\x07"}
		}, `label "io.archmirror.upstream.ref" "v1\x1b]0;pwned\a" contains control characters`},
		{"huge label", func(s *Spec) { s.Labels = map[string]string{"org.opencontainers.image.version": huge} }, "more than 65536"},
		{"newline in the context", func(s *Spec) { s.Context = "/src\n/etc" }, "contains control characters"},
		{"huge context", func(s *Spec) { s.Context = "/src/" + huge }, "context is 1048581 bytes"},
		{"push to a list", func(s *Spec) { s.Push = "127.0.0.1:5000/mirror/app,evil.example/x" }, `push "127.0.0.1:5000/mirror/app,evil.example/x": not a repository`},
		{"push with a tag", func(s *Spec) { s.Push = "127.0.0.1:5000/mirror/app:1.0.0" }, "not a repository"},
		{"cache not a tag", func(s *Spec) { s.CacheRef = "127.0.0.1:5000/mirror/app:cache;x" }, "not a tag reference"},
		{"layout with a newline", func(s *Spec) { s.Push, s.Layout = "", "/mirror\n/app" }, `layout "/mirror\n/app" contains control characters`},
	} {
		s := ok
		s.Args, s.Labels = maps.Clone(ok.Args), maps.Clone(ok.Labels)
		tt.edit(&s)
		err := check(s)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
			continue
		}
		if len(err.Error()) > 400 {
			t.Errorf("%s: error is %d bytes long: a hostile value must be cut short", tt.name, len(err.Error()))
		}
	}
}

// A git context's ref and subdirectory come from a template with the version in it: a ref git
// would read as an option or refuse, or a subdirectory that climbs out, is refused.
func TestGitContextRefusesHostileRefs(t *testing.T) {
	for ctx, want := range map[string]string{
		"https://h.example/r.git#--upload-pack=touch${IFS}/tmp/x": `starts with "-"`,
		"https://h.example/r.git#v" + hostile["traversal"]:        `contains ".."`,
		"https://h.example/r.git#" + hostile["shell"]:             `contains one of`,
		"https://h.example/r.git#v1.0.0^{}":                       `contains one of`,
		"https://h.example/r.git#v1@{0}":                          `contains "@{"`,
		"https://h.example/r.git#v1\x1b[2J":                       "control characters",
		"https://h.example/r.git#v1.0.0.lock":                     "not a valid git ref name",
	} {
		g, err := gitContext(ctx)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%q: %+v, %v; want %q", ctx, g, err, want)
		}
	}
	// A subdirectory cannot climb out: BuildKit's parser (which buildkitd shares) cleans it
	// to a path inside the repository.
	for ctx, want := range map[string]string{
		"https://h.example/r.git#v1.0.0:../../etc":  "etc",
		"https://h.example/r.git#v1.0.0:/../../etc": "etc",
		"https://h.example/r.git#v1.0.0:a/../../b":  "b",
	} {
		if g, err := gitContext(ctx); err != nil || g.SubDir != want {
			t.Errorf("%q: subdir %+v, %v; want %q", ctx, g, err, want)
		}
	}
	for _, ctx := range []string{
		"https://h.example/r.git#v10.3.1:server/build",
		"https://h.example/r.git#v1.0.0-limitless",
		"https://h.example/r.git#refs/tags/v1.0.0:/server",
		"https://h.example/r.git#0123456789abcdef0123456789abcdef01234567",
		"https://h.example/r.git#v1.0.0:a/../b",
		"https://h.example/r.git",
	} {
		if _, err := gitContext(ctx); err != nil {
			t.Errorf("%q: %v", ctx, err)
		}
	}
}

// Upstream text in a build arg or a label reaches BuildKit exactly once, as it is: no template
// is executed on it, no variable expanded, no command run. (The Dockerfile frontend then
// expands a build arg where the Dockerfile names it, once, as for any value.)
func TestUpstreamTextIsPassedVerbatim(t *testing.T) {
	args := map[string]string{}
	for k, v := range hostile {
		if k != "huge" {
			args[strings.ToUpper(k)] = v
		}
	}
	args["SUBST"] = "$(id) `id` ${HOME} $1"
	s := Spec{JobID: "app/app/1.0.0/linux-amd64", Platform: amd64, Context: t.TempDir(), Output: Output{Push: "127.0.0.1:5000/mirror/app"},
		Args: args, Labels: map[string]string{"io.archmirror.upstream.ref": hostile["template"]}}
	if err := check(s); err != nil {
		t.Fatal(err)
	}
	opt, err := solveOpt(s, false, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range args {
		if got := opt.FrontendAttrs["build-arg:"+k]; got != v {
			t.Errorf("build arg %s = %q, want %q", k, got, v)
		}
	}
	if got := opt.FrontendAttrs["label:io.archmirror.upstream.ref"]; got != hostile["template"] {
		t.Errorf("label = %q", got)
	}
	if got := opt.Exports[0].Attrs["name"]; got != s.Push {
		t.Errorf("export name = %q", got)
	}

	// A patch copies what it captured from the upstream's Dockerfile as it is: "$1", "${x}"
	// and "{{…}}" there are not expanded by the replacement.
	df := "FROM base\nRUN echo {{.Env.X}} $1 ${HOME} $(id)\n"
	got, err := Apply([]byte(df), []config.Patch{replace(`^RUN echo (.*)$`, `RUN printf '%s\n' "$1" && echo $HOME`)}, "Dockerfile")
	if want := "FROM base\nRUN printf '%s\\n' \"{{.Env.X}} $1 ${HOME} $(id)\" && echo $HOME\n"; err != nil || string(got) != want {
		t.Errorf("Apply = %q, %v; want %q", got, err, want)
	}
}

// A hostile job ID does not bloat or forge the error that starts with it.
func TestBuildErrorQuotesHostileJobID(t *testing.T) {
	b := NewBuildKit("unix://"+filepath.Join(t.TempDir(), "none.sock"), WithPingTimeout(time.Second))
	defer b.Close()
	s := Spec{JobID: "app/app/" + hostile["huge"] + "\nFAKE LINE/linux-amd64", Platform: amd64, Context: t.TempDir(), Output: Output{Push: "127.0.0.1:1/app"}}
	_, err := b.Build(t.Context(), s)
	if err == nil || len(err.Error()) > 300 || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), `"app/app/111`) {
		t.Fatalf("error = %.300q…", err)
	}
}

// The local Dockerfile and its .dockerignore are read through the context, never through a
// symlink out of it; a symlink that stays inside is followed, as BuildKit does.
func TestLocalDockerfileStaysInTheContext(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "Dockerfile"), "FROM secret\n# SECRET-FROM-THE-HOST\n")
	link := func(t *testing.T, target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name       string
		setup      func(t *testing.T, ctx string)
		dockerfile string
		err        string // "" = read, and the content is "FROM base"
	}{
		{"absolute link", func(t *testing.T, ctx string) { link(t, "/etc/passwd", filepath.Join(ctx, "Dockerfile")) }, "",
			`"Dockerfile" is a symlink to "/etc/passwd", outside the context: refused`},
		{"climbing link", func(t *testing.T, ctx string) {
			rel, _ := filepath.Rel(ctx, filepath.Join(outside, "Dockerfile"))
			link(t, rel, filepath.Join(ctx, "Dockerfile"))
		}, "", "outside the context: refused"},
		{"directory link", func(t *testing.T, ctx string) { link(t, outside, filepath.Join(ctx, "evil")) }, "evil/Dockerfile",
			`"evil" is a symlink to`},
		{"dotdot link", func(t *testing.T, ctx string) { link(t, "../../../../../../../..", filepath.Join(ctx, "up")) }, "up" + outside + "/Dockerfile",
			`"up" is a symlink to "../../../../../../../.."`},
		{"dockerignore link", func(t *testing.T, ctx string) {
			write(t, filepath.Join(ctx, "Dockerfile"), "FROM base\n")
			link(t, "/etc/shadow", filepath.Join(ctx, "Dockerfile.dockerignore"))
		}, "", `"Dockerfile.dockerignore" is a symlink to "/etc/shadow"`},
		{"fifo", func(t *testing.T, ctx string) {
			if err := syscall.Mkfifo(filepath.Join(ctx, "Dockerfile"), 0o644); err != nil {
				t.Skip(err)
			}
		}, "", "is not a regular file"},
		{"device link", func(t *testing.T, ctx string) { link(t, "/dev/zero", filepath.Join(ctx, "Dockerfile")) }, "", "outside the context"},
		{"huge", func(t *testing.T, ctx string) {
			write(t, filepath.Join(ctx, "Dockerfile"), "FROM base\n"+strings.Repeat("#", 2<<20))
		}, "", "more than a Dockerfile should be"},
		{"link inside", func(t *testing.T, ctx string) {
			write(t, filepath.Join(ctx, "build", "Dockerfile.real"), "FROM base\n")
			link(t, "build/Dockerfile.real", filepath.Join(ctx, "Dockerfile"))
		}, "", ""},
		{"missing", func(t *testing.T, ctx string) {}, "sub/Dockerfile", "/sub/Dockerfile: no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.TempDir()
			tt.setup(t, ctx)
			name := tt.dockerfile
			if name == "" {
				name = "Dockerfile"
			}
			done := make(chan struct{})
			var src source
			var err error
			go func() { defer close(done); src, err = localDockerfile(ctx, name) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("reading the Dockerfile hangs")
			}
			if tt.err == "" {
				if err != nil || string(src.data) != "FROM base\n" {
					t.Fatalf("%q, %v", src.data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "root:") || src.data != nil {
				t.Errorf("a file outside the context was read: %v %q", err, src.data)
			}
		})
	}

	// Build reports it before dialling buildkitd, naming the job.
	ctx := t.TempDir()
	link(t, "/etc/passwd", filepath.Join(ctx, "Dockerfile"))
	b := NewBuildKit("unix://"+filepath.Join(t.TempDir(), "none.sock"), WithPingTimeout(time.Second))
	defer b.Close()
	_, err := b.Build(t.Context(), Spec{JobID: "evil/evil/1.0.0/linux-amd64", Platform: amd64, Context: ctx, Output: Output{Push: "127.0.0.1:1/evil"}})
	if want := "evil/evil/1.0.0/linux-amd64: " + filepath.Join(ctx, "Dockerfile") + `: "Dockerfile" is a symlink to "/etc/passwd", outside the context: refused`; err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

// A failed step's name and log are the upstream's: terminal escapes in them are escaped in the
// error, and a runaway line is cut.
func TestExplainEscapesBuildOutput(t *testing.T) {
	p := newProgress(io.Discard, 4)
	st := &client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: "sha256:1", Name: "[2/2] RUN printf '\x1b[2J'", Error: "exit code: 1"}},
		Logs: []*client.VertexLog{{Vertex: "sha256:1", Data: []byte("ok\n\x1b]0;owned\x07\r\nok: all jobs built\x1b[A\n" +
			strings.Repeat("x", 1<<20) + "END\n\xff\xfe")}},
	}
	p.ch <- st
	close(p.ch)
	p.wait()
	err := p.explain(os.ErrInvalid).Error()
	for _, want := range []string{`RUN printf '\x1b[2J'`, `\x1b]0;owned\a`, `ok: all jobs built\x1b[A`, "xxxEND", "\uFFFD"} {
		if !strings.Contains(err, want) {
			t.Errorf("error lacks %q:\n%.600s", want, err)
		}
	}
	if strings.ContainsAny(err, "\x1b\x07\r") || len(err) > 4*maxLine+500 {
		t.Errorf("error is %d bytes, escapes kept: %.300q", len(err), err)
	}

	// and Build's own wrapping escapes what the solve error quotes
	werr := cleanError(os.NewSyscallError("RUN echo \x1b[31mred", os.ErrPermission))
	if got := werr.Error(); got != `RUN echo \x1b[31mred: permission denied` {
		t.Errorf("cleanError = %q", got)
	}
	if !strings.Contains(werr.Error(), "permission denied") || !errors.Is(werr, os.ErrPermission) {
		t.Error("cleanError lost the wrapped error")
	}
}

// A step's name is a Dockerfile line with the upstream's text in it: the live progress line
// gets it escaped, on one line.
func TestStepNameEscaped(t *testing.T) {
	p := newProgress(io.Discard, 4)
	var got []string
	p.onStep = func(name string) { got = append(got, name) }
	now := time.Now()
	p.ch <- &client.SolveStatus{Vertexes: []*client.Vertex{{
		Digest: "sha256:1", Started: &now,
		Name: "[2/2] RUN echo \x1b]0;pwned\x07\r[3/3] DONE\u202e\nx",
	}}}
	close(p.ch)
	p.wait()
	want := `[2/2] RUN echo \x1b]0;pwned\a\r[3/3] DONE\u202e\nx`
	if len(got) != 1 || got[0] != want {
		t.Errorf("step names = %q, want [%q]", got, want)
	}
}

// A git context may carry a token as its user name: a job's error never quotes it, whether
// archmirror refused the context or the solve's own error names the remote.
func TestBuildErrorRedactsContextUser(t *testing.T) {
	const token = "s3cr3t0123456789abcdef"
	b := NewBuildKit("unix://"+filepath.Join(t.TempDir(), "none.sock"), WithPingTimeout(time.Second))
	defer b.Close()
	for _, ctx := range []string{
		"https://" + token + "@git.example/r.git#-x",         // a ref that is an option
		"https://" + token + "@git.example/r.git#v1\x1b[2J",  // control characters
		"https://" + token + ":x-oauth@git.example/r.git#..", // user and password
	} {
		_, err := b.Build(t.Context(), Spec{JobID: "app/app/1.0.0/linux-amd64", Platform: amd64, Context: ctx, Output: Output{Push: "127.0.0.1:1/app"}})
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[redacted]@git.example") {
			t.Errorf("context %q: error = %v", ctx, err)
		}
	}
	err := cleanError(fmt.Errorf("failed to fetch remote https://%s@git.example/r.git: exit status 128", token))
	if want := "failed to fetch remote https://[redacted]@git.example/r.git: exit status 128"; err.Error() != want {
		t.Errorf("cleanError = %q, want %q", err, want)
	}
}
