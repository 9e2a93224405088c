package build

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/testenv"
)

// hostileEnv is a registry, a buildkitd and the busybox base, plus a secret file of the host
// that hostile contexts try to reach and a canary path they try to create.
type hostileEnv struct {
	reg, base string
	b         *BuildKit
	secret    string // absolute path of a host file
	marker    string // its content: must never show in an image, a log or an error
	canary    string // a host path nothing may create
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	reg := testenv.Registry(t)
	e := &hostileEnv{reg: reg, b: NewBuildKit(testenv.BuildKit(t, reg))}
	t.Cleanup(func() { e.b.Close() })
	e.base, _, _ = testenv.BaseImage(t, reg)
	var r [8]byte
	rand.Read(r[:])
	e.marker = "HOST-SECRET-" + hex.EncodeToString(r[:])
	e.secret = filepath.Join(t.TempDir(), "secret.txt")
	write(t, e.secret, e.marker+"\n")
	e.canary = filepath.Join(t.TempDir(), "canary")
	return e
}

// up climbs from any directory to / (more ".." than any temp directory is deep).
const up = "../../../../../../../../../../../../../.."

// build builds one amd64 job of a hostile app and returns its result, error and log.
func (e *hostileEnv) build(t *testing.T, version, context string) (Result, error, string) {
	t.Helper()
	var log bytes.Buffer
	res, err := e.b.Build(t.Context(), Spec{
		JobID: "hostile/hostile/" + version + "/linux-amd64", Platform: amd64, Context: context,
		Output: Output{Push: e.reg + "/mirror/hostile", Insecure: true}, Log: &log,
	})
	return res, err, log.String()
}

// failed checks that a build was refused for the right reason, with an error that names the
// job and leaks nothing of the host.
func (e *hostileEnv) failed(t *testing.T, version string, err error, log, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the hostile build succeeded; log:\n%s", log)
	}
	msg := err.Error()
	t.Logf("refused: %s", msg)
	if !strings.HasPrefix(msg, "hostile/hostile/"+version+"/linux-amd64: ") || !strings.Contains(msg, want) {
		t.Errorf("error = %v\nwant it to name the job and say %q", err, want)
	}
	if strings.Contains(msg, e.marker) || strings.Contains(log, e.marker) {
		t.Errorf("the host's secret leaked into the error or the log: %v", err)
	}
	e.noCanary(t)
}

func (e *hostileEnv) noCanary(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(e.canary); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a hostile build created %s on the host (%v)", e.canary, err)
	}
}

// layers reads every entry of an image's layers: symlink targets, and whether any file holds
// the secret.
func (e *hostileEnv) layers(t *testing.T, digest string) (links map[string]string, files []string) {
	t.Helper()
	ref, err := name.ParseReference(e.reg + "/mirror/hostile@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	links = map[string]string{}
	testenv.EachEntry(t, img, func(h *tar.Header, r io.Reader) {
		b, _ := io.ReadAll(r)
		if bytes.Contains(b, []byte(e.marker)) {
			t.Errorf("the image holds the host's secret in %s", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			links[h.Name] = h.Linkname
		case tar.TypeReg:
			files = append(files, h.Name)
		}
	})
	return links, files
}

// BuildKit confines a Dockerfile's COPY and ADD to the build context, and sends the context's
// symlinks as symlinks: no hostile local context reaches a file of the host, or writes one.
// archmirror's own reading of the Dockerfile is confined too (see
// TestLocalDockerfileStaysInTheContext).
func TestHostileLocalContexts(t *testing.T) {
	e := newHostileEnv(t)
	context := func(t *testing.T, dockerfile string, links map[string]string) string {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "Dockerfile"), fmt.Sprintf("FROM %s\n%s", e.base, dockerfile))
		write(t, filepath.Join(dir, "note.txt"), "from the context\n")
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	evil := map[string]string{"evil": filepath.Dir(e.secret), "up": up, "abs": "/"}
	for _, tt := range []struct {
		version, dockerfile, want string
	}{
		{"1.0.1", "COPY " + up + e.secret + " /x\n", "not found"},
		{"1.0.2", "ADD " + e.secret + " /x\n", "not found"},
		{"1.0.3", "COPY evil/secret.txt /x\n", "not found"},
		{"1.0.4", "COPY up" + e.secret + " /x\n", "not found"},
		{"1.0.5", "COPY abs" + e.secret + " /x\n", "not found"},
		{"1.0.6", "COPY --from=" + e.base + " " + e.secret + " /x\n", "no such file"}, // the base image's, not the host's
		// the build's output is the upstream's: its terminal escapes reach no report
		{"1.0.7", "RUN printf '\\033]0;owned\\007\\033[2J' ; exit 3\n", `\x1b]0;owned\a\x1b[2J`},
	} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			_, err, log := e.build(t, tt.version, context(t, tt.dockerfile, evil))
			e.failed(t, tt.version, err, log, tt.want)
			if err != nil && strings.ContainsAny(err.Error(), "\x1b\x07") {
				t.Errorf("the error carries terminal escapes: %q", err)
			}
		})
	}

	// The context's escaping links are copied as links (their targets are text), and a RUN
	// that writes through a link to / writes into the image's filesystem, not the host's.
	t.Run("1.1.0", func(t *testing.T) {
		t.Parallel()
		df := "COPY . /ctx/\n" +
			"RUN ln -s / /host && mkdir -p /host" + filepath.Dir(e.canary) + " && echo pwned > /host" + e.canary + "\n" +
			"RUN ! cat /ctx/evil/secret.txt /ctx/up" + e.secret + " /ctx/abs" + e.secret + "\n"
		res, err, log := e.build(t, "1.1.0", context(t, df, evil))
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		e.noCanary(t)
		links, files := e.layers(t, res.Digest)
		for name, target := range evil {
			if got := links["ctx/"+name]; got != target {
				t.Errorf("ctx/%s in the image: link to %q, want the link itself (to %q)", name, got, target)
			}
		}
		canaryInImage := strings.TrimPrefix(e.canary, "/")
		found := false
		for _, f := range files {
			found = found || f == canaryInImage
		}
		if !found {
			t.Errorf("the RUN's write through the link is not in the image (files %v)", files)
		}
	})
}

// The same for a git context, the usual case (an upstream's repository at the release's
// tag): buildkitd fetches and checks it out itself, reads the Dockerfile inside the checkout,
// and confines COPY to it. The repository is served by fakeupstream over smart HTTP.
func TestHostileGitContexts(t *testing.T) {
	e := newHostileEnv(t)
	file := func(s string) fakeupstream.GitFile { return fakeupstream.GitFile{Body: []byte(s)} }
	link := func(s string) fakeupstream.GitFile { return fakeupstream.GitFile{Link: s} }
	evil := func(df fakeupstream.GitFile) map[string]fakeupstream.GitFile {
		return map[string]fakeupstream.GitFile{
			"Dockerfile": df, "note.txt": file("from the repository\n"),
			"evil": link(filepath.Dir(e.secret)), "up": link(up), "out": link(e.canary),
		}
	}
	from := "FROM " + e.base + "\n"
	good := evil(link("docker/../docker/Dockerfile")) // a link inside the repository is followed
	good["docker/Dockerfile"] = file(from + "COPY . /src/\nRUN echo pwned > /src/out || true\n")
	repo := filepath.Join(t.TempDir(), "hostile.git")
	err := fakeupstream.WriteGitRepo(t.Context(), repo, []fakeupstream.GitTag{
		{Name: "v2.0.0", Files: good},
		{Name: "v2.0.1", Files: evil(link(e.secret))},
		{Name: "v2.0.2", Files: evil(file(from + "COPY evil/secret.txt /x\n"))},
		{Name: "v2.0.3", Files: evil(file(from + "COPY up" + e.secret + " /x\n"))},
		{Name: "v2.0.4", Files: evil(file(from + "COPY out /x\n"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	fu := fakeupstream.New(fakeupstream.Fixture{})
	fu.ServeGit("hostile", repo)
	srv := httptest.NewServer(fu)
	t.Cleanup(srv.Close)
	url := srv.URL + "/git/hostile.git#v"

	for _, tt := range []struct{ version, want string }{
		{"2.0.1", `"Dockerfile" is a symlink to "` + e.secret + `", outside the context: refused`},
		{"2.0.2", "not found"},
		{"2.0.3", "not found"},
		{"2.0.4", "not found"}, // the link to the canary leads nowhere
	} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			_, err, log := e.build(t, tt.version, url+tt.version)
			e.failed(t, tt.version, err, log, tt.want)
		})
	}
	t.Run("2.0.0", func(t *testing.T) {
		t.Parallel()
		res, err, log := e.build(t, "2.0.0", url+"2.0.0")
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		e.noCanary(t)
		links, _ := e.layers(t, res.Digest)
		for name, target := range map[string]string{"evil": filepath.Dir(e.secret), "up": up, "out": e.canary} {
			if got := links["src/"+name]; got != target {
				t.Errorf("src/%s in the image: link to %q, want the link itself (to %q)", name, got, target)
			}
		}
		if res.Inputs.SourceCommit == "" {
			t.Error("no source commit recorded for the git context")
		}
	})
}
