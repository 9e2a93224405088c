package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/redact"
	"github.com/archmirror/archmirror/internal/testenv"
)

func TestAddress(t *testing.T) {
	t.Setenv(HostEnv, "")
	if got := Address(""); got != DefaultAddress {
		t.Errorf("Address(\"\") = %q without %s, want %q", got, HostEnv, DefaultAddress)
	}
	t.Setenv(HostEnv, "tcp://builder:1234")
	if got := Address(""); got != "tcp://builder:1234" {
		t.Errorf("Address(\"\") = %q, want $%s", got, HostEnv)
	}
	if got := Address("unix:///x.sock"); got != "unix:///x.sock" {
		t.Errorf("Address(configured) = %q", got)
	}
	if got := NewBuildKit("").Addr(); got != "tcp://builder:1234" {
		t.Errorf("NewBuildKit(\"\").Addr() = %q", got)
	}
}

func TestCheck(t *testing.T) {
	ok := Spec{JobID: "j", Platform: amd64, Context: "/src", Output: Output{Push: "r/app"}}
	for _, tt := range []struct {
		name string
		edit func(*Spec)
		err  string
	}{
		{"no platform", func(s *Spec) { s.Platform = platform.Platform{} }, "no platform"},
		{"two outputs", func(s *Spec) { s.Layout = "/l" }, "exactly one output"},
		{"no output", func(s *Spec) { s.Push = "" }, "exactly one output"},
		{"escaping dockerfile", func(s *Spec) { s.Dockerfile = "../Dockerfile" }, "inside the context"},
		{"absolute dockerfile", func(s *Spec) { s.Dockerfile = "/etc/passwd" }, "inside the context"},
	} {
		s := ok
		tt.edit(&s)
		if err := check(s); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		}
	}
	if err := check(ok); err != nil {
		t.Error(err)
	}
	for _, c := range []string{"https://example.com/repo", "ftp://x/y.git"} {
		if _, err := gitContext(c); err == nil {
			t.Errorf("context %q accepted", c)
		}
	}
	for _, c := range []string{"/abs/dir", "relative/dir", "./dir", "../dir"} {
		if g, err := gitContext(c); g != nil || err != nil {
			t.Errorf("local context %q: %v, %v", c, g, err)
		}
	}
	// what the build log names a git context by: user and password both go, as a user name
	// alone may be a token
	for _, c := range []string{"https://bot:s3cret@example.com/r.git", "https://s3cret@example.com/r.git"} {
		if got := redact.Value(c); got != "https://[redacted]@example.com/r.git" {
			t.Errorf("redact.Value(%q) = %q", c, got)
		}
	}
	g, err := gitContext("https://github.com/mattermost/mattermost.git#v10.3.1:server/build")
	if err != nil || g.Remote != "https://github.com/mattermost/mattermost.git" || g.Ref != "v10.3.1" || g.SubDir != "server/build" {
		t.Errorf("git context: %+v, %v", g, err)
	}
}

var (
	amd64 = platform.Platform{OS: "linux", Arch: "amd64"}
	arm64 = platform.Platform{OS: "linux", Arch: "arm64"}
)

// An endpoint nobody listens on fails fast, naming the endpoint; a local Dockerfile's patches
// are checked before the endpoint is.
func TestBuildKitUnreachable(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "buildkitd.sock")
	b := NewBuildKit(addr, WithPingTimeout(2*time.Second))
	defer b.Close()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "Dockerfile"), "FROM base@sha256:"+digest64+"\nRUN true\n")
	s := Spec{JobID: "app/1.0.0/linux-amd64", Platform: amd64, Context: dir, Patches: []config.Patch{unpin()}, Output: Output{Push: "127.0.0.1:1/app"}}

	start := time.Now()
	_, err := b.Build(t.Context(), s)
	want := "app/1.0.0/linux-amd64: buildkit " + addr + ": not answering: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v, want %q…", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}

	s.Patches = append(s.Patches, replace(`^RUN false`, "RUN true"))
	_, err = b.Build(t.Context(), s)
	if want := `app/1.0.0/linux-amd64: patch 2 (replace "^RUN false"): matched no line of ` + filepath.Join(dir, "Dockerfile"); err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}

	s.Dockerfile = "build/Dockerfile.prod"
	_, err = b.Build(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "build", "Dockerfile.prod")) {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

// env is what the BuildKit tests share: a registry, a buildkitd that reaches it over plain HTTP,
// the busybox base image, a fixture context, and an HTTP server with release tarballs.
type env struct {
	reg, addr  string
	base       string  // the base image's reference ("127.0.0.1:PORT/base:latest")
	baseIndex  v1.Hash // its index
	baseAMD64  v1.Hash // its linux/amd64 manifest
	dockerfile string  // the fixture Dockerfile, FROM pinned to the amd64 base manifest
	downloads  atomic.Int64
	tarballs   map[string][]byte // by URL path
	srv        *httptest.Server
}

// fixtureDockerfile downloads a per-arch release tarball like Mattermost's Dockerfile does,
// and checks that the program in it runs and is the target's architecture.
const fixtureDockerfile = `FROM %s/base@%s
ARG PACKAGE
ARG TARGETARCH
RUN mkdir -p /opt && wget -q -O- "$PACKAGE" | tar -xzf - -C /opt
RUN test "$(/opt/app/hello)" = "$TARGETARCH"
COPY note.txt /opt/app/note.txt
`

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{reg: testenv.Registry(t)}
	e.addr = testenv.BuildKit(t, e.reg)
	e.base, e.baseIndex, e.baseAMD64 = testenv.BaseImage(t, e.reg)
	e.dockerfile = fmt.Sprintf(fixtureDockerfile, e.reg, e.baseAMD64)

	e.tarballs = map[string][]byte{}
	for _, arch := range []string{"amd64", "arm64"} {
		e.tarballs["/app-"+arch+".tar.gz"] = appTarball(t, hello(t, arch), nil)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.downloads.Add(1)
		b, ok := e.tarballs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// context writes the fixture build context and returns its directory.
func (e *env) context(t testing.TB) string {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "Dockerfile"), e.dockerfile)
	write(t, filepath.Join(dir, "note.txt"), "from the context\n")
	return dir
}

func (e *env) spec(t testing.TB, p platform.Platform, ctxDir string, log io.Writer) Spec {
	return Spec{
		JobID:    "app/1.2.3/" + p.Slug(),
		Platform: p,
		Context:  ctxDir,
		Patches:  []config.Patch{unpin()},
		Args:     map[string]string{"PACKAGE": e.srv.URL + "/app-" + p.Arch + ".tar.gz"},
		Labels: map[string]string{
			"org.opencontainers.image.version": "1.2.3",
			"org.opencontainers.image.source":  "https://example.com/app",
		},
		Output: Output{Push: e.reg + "/mirror/app", Insecure: true},
		Log:    log,
	}
}

// hello builds a static Go program for linux/arch that prints its GOARCH.
func hello(t testing.TB, arch string) []byte {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module hello\n\ngo 1.22\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nimport (\n\t\"os\"\n\t\"runtime\"\n)\n\nfunc main() { os.Stdout.WriteString(runtime.GOARCH + \"\\n\") }\n")
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hello for %s: %v\n%s", arch, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appTarball is a release tarball: app/hello and app/VERSION, and app/data if data is not nil.
func appTarball(t testing.TB, hello, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	type file struct {
		name string
		mode int64
		data []byte
	}
	files := []file{{"app/", 0o755, nil}, {"app/hello", 0o755, hello}, {"app/VERSION", 0o644, []byte("1.2.3\n")}}
	if data != nil {
		files = append(files, file{"app/data", 0o644, data})
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildAll builds specs concurrently, as the orchestrator does, and returns the results and the
// wall time.
func buildAll(t testing.TB, b Builder, specs ...Spec) ([]Result, time.Duration) {
	t.Helper()
	start := time.Now()
	results := make([]Result, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { results[i], errs[i] = b.Build(t.Context(), s) })
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		for _, s := range specs {
			if buf, ok := s.Log.(*bytes.Buffer); ok {
				t.Logf("%s log:\n%s", s.JobID, buf)
			}
		}
		t.Fatal(err)
	}
	return results, wall
}

func TestBuildKit(t *testing.T) {
	e := newEnv(t)
	b := NewBuildKit(e.addr)
	defer b.Close()

	platforms, err := b.Platforms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("buildkitd %s: platforms %v", e.addr, platforms)

	t.Run("TwoPlatformsPushedByDigest", func(t *testing.T) {
		requirePlatform(t, platforms, "linux/arm64")
		dir := e.context(t)
		var logs [2]bytes.Buffer
		specs := []Spec{e.spec(t, amd64, dir, &logs[0]), e.spec(t, arm64, dir, &logs[1])}
		for i := range specs {
			specs[i].CacheRef = e.reg + "/cache/app:" + specs[i].Platform.Slug()
		}
		results, wall := buildAll(t, b, specs...)
		t.Logf("cold two-platform build (concurrent, with cache export): %s wall; amd64 %s, arm64 %s",
			wall.Round(10*time.Millisecond), results[0].Duration.Round(10*time.Millisecond), results[1].Duration.Round(10*time.Millisecond))
		for i, r := range results {
			checkPushed(t, e.reg+"/mirror/app", r, specs[i])
			// RUN wget downloads are the build's business: BuildKit records only what it
			// fetched itself (ADD https://…), so no artifacts here
			e.checkInputs(t, r, &logs[i], "", nil)
		}
		if results[0].Digest == results[1].Digest {
			t.Error("amd64 and arm64 have one digest")
		}

		// A fresh buildkitd (empty local cache) rebuilds from the registry cache without
		// downloading the tarballs again.
		b2 := NewBuildKit(testenv.BuildKit(t, e.reg))
		defer b2.Close()
		before := e.downloads.Load()
		var logs2 [2]bytes.Buffer
		specs[0].Log, specs[1].Log = &logs2[0], &logs2[1]
		again, wall2 := buildAll(t, b2, specs...)
		t.Logf("rebuild on a fresh buildkitd from the registry cache: %s wall; amd64 %s, arm64 %s",
			wall2.Round(10*time.Millisecond), again[0].Duration.Round(10*time.Millisecond), again[1].Duration.Round(10*time.Millisecond))
		if n := e.downloads.Load() - before; n != 0 {
			t.Errorf("the rebuild downloaded %d tarballs; want all steps from the cache", n)
		}
		for i, r := range again {
			// mode=max keeps the layers and the history's timestamps: the same image again
			if r.Digest != results[i].Digest {
				t.Errorf("%s: rebuilt %s, cold build %s", specs[i].JobID, r.Digest, results[i].Digest)
			}
			checkPushed(t, e.reg+"/mirror/app", r, specs[i])
			e.checkInputs(t, r, &logs2[i], "", nil)
			if !strings.Contains(logs2[i].String(), "CACHED") {
				t.Errorf("%s: no CACHED step in the rebuild log:\n%s", specs[i].JobID, logs2[i].String())
			}
		}
	})

	t.Run("PatchNoLongerMatches", func(t *testing.T) {
		dir := e.context(t)
		var log bytes.Buffer
		s := e.spec(t, amd64, dir, &log)
		s.Patches = append(s.Patches, replace(`tar -xvz$`, "tar -xvz && true"))
		_, err := b.Build(t.Context(), s)
		want := s.JobID + `: patch 2 (replace "tar -xvz$"): matched no line of ` + filepath.Join(dir, "Dockerfile")
		if err == nil || err.Error() != want {
			t.Fatalf("error = %v\nwant    %s", err, want)
		}
		if log.Len() != 0 {
			t.Errorf("something was built:\n%s", log.String())
		}
	})

	t.Run("DownloadFails", func(t *testing.T) {
		var log bytes.Buffer
		s := e.spec(t, amd64, e.context(t), &log)
		s.Args["PACKAGE"] = e.srv.URL + "/app-amd64-missing.tar.gz"
		_, err := b.Build(t.Context(), s)
		if err == nil {
			t.Fatal("built with a missing tarball")
		}
		msg := err.Error()
		for _, want := range []string{
			s.JobID + ": [2/4] RUN ",
			// BuildKit names the step with the build args expanded
			`[2/4] RUN mkdir -p /opt && wget -q -O- "` + s.Args["PACKAGE"] + `" | tar -xzf - -C /opt: `,
			"did not complete successfully",
			"wget: server returned error: HTTP/1.1 404 Not Found",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
		t.Logf("error:\n%s", msg)
		if !strings.Contains(log.String(), "404 Not Found") {
			t.Errorf("log lacks the wget error:\n%s", log.String())
		}
	})

	t.Run("Layout", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "oci")
		var log bytes.Buffer
		s := e.spec(t, amd64, e.context(t), &log)
		s.Push, s.Insecure, s.Layout = "", false, dir
		r, err := b.Build(t.Context(), s)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		checkLayout(t, dir, r, s)
		e.checkInputs(t, r, &log, "", nil)
	})

	t.Run("Inputs", func(t *testing.T) {
		// a file BuildKit downloads itself is recorded with its sha256
		dir := e.context(t)
		write(t, filepath.Join(dir, "Dockerfile"), e.dockerfile+"ADD "+e.srv.URL+"/app-arm64.tar.gz /opt/arm64.tar.gz\n")
		var log bytes.Buffer
		s := e.spec(t, amd64, dir, &log)
		before := time.Now()
		r, err := b.Build(t.Context(), s)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		checkPushed(t, e.reg+"/mirror/app", r, s)
		sum := sha256.Sum256(e.tarballs["/app-arm64.tar.gz"])
		e.checkInputs(t, r, &log, "", []Artifact{{URI: e.srv.URL + "/app-arm64.tar.gz", SHA256: "sha256:" + hex.EncodeToString(sum[:])}})
		if r.Inputs.Started.Before(before.Add(-time.Minute)) || r.Inputs.Finished.After(time.Now().Add(time.Minute)) {
			t.Errorf("build ran %s … %s, not around now", r.Inputs.Started, r.Inputs.Finished)
		}
		t.Logf("inputs: %+v", r.Inputs)

		// What cannot be read is a warning, never a failed build: here a build buildkitd
		// has no record of.
		c, err := b.client(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		log.Reset()
		start := time.Now()
		in := b.inputs(t.Context(), c, "no-such-build", start, start.Add(time.Second), nil, nil, &log)
		if want := "WARNING: provenance of build no-such-build is incomplete: buildkit kept no history record of build no-such-build"; !strings.Contains(log.String(), want) {
			t.Errorf("log %q, want %q", log.String(), want)
		}
		if !in.Started.Equal(start) || !in.Finished.Equal(start.Add(time.Second)) || in.BuilderVersion == "" || in.BaseImages != nil || in.Artifacts != nil {
			t.Errorf("inputs of an unknown build: %+v", in)
		}
	})

	t.Run("GitContext", func(t *testing.T) {
		url, commit := gitDaemon(t, map[string]string{
			"server/build/Dockerfile": e.dockerfile,
			"server/build/note.txt":   "from git\n",
		}, "v1.2.3")
		var log bytes.Buffer
		s := e.spec(t, amd64, url+"#v1.2.3:server/build", &log)
		s.Patches = append(s.Patches, insertAfter(`^ARG PACKAGE$`, "ENV PATCHED=yes"))
		r, err := b.Build(t.Context(), s)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		img := checkPushed(t, e.reg+"/mirror/app", r, s)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !containsString(cf.Config.Env, "PATCHED=yes") {
			t.Errorf("env %v: the patched Dockerfile was not used", cf.Config.Env)
		}
		if got := fileInImage(t, img, "opt/app/note.txt"); string(got) != "from git\n" {
			t.Errorf("note.txt = %q, want the git context's", got)
		}
		e.checkInputs(t, r, &log, commit, nil)

		// BuildKit pins an annotated tag to the tag object, and records that: the inputs
		// name the commit it points to
		log.Reset()
		s.Context = url + "#v1.2.3-a:server/build"
		r, err = b.Build(t.Context(), s)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		e.checkInputs(t, r, &log, commit, nil)
		s.Context = url + "#v1.2.3:server/build"

		// errors name the Dockerfile in the repository
		s.Patches = []config.Patch{replace(`^RUN nothing`, "")}
		_, err = b.Build(t.Context(), s)
		want := s.JobID + `: patch 1 (replace "^RUN nothing"): matched no line of ` + url + "#v1.2.3:server/build/Dockerfile"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant    %s", err, want)
		}
		s.Context = url + "#v1.2.3:nowhere"
		_, err = b.Build(t.Context(), s)
		if err == nil || !strings.Contains(err.Error(), "no nowhere/Dockerfile in the repository at v1.2.3") {
			t.Errorf("missing Dockerfile: %v", err)
		}
	})
}

// checkInputs checks what a build of the fixture says it used: the base image's index as
// BuildKit resolved base:latest (for any platform: BuildKit records the digest the tag
// resolved to, not the platform's manifest), the commit of a git context, the downloads
// BuildKit made itself, the build's times and BuildKit's version; and that nothing was missing.
func (e *env) checkInputs(t *testing.T, r Result, log *bytes.Buffer, commit string, artifacts []Artifact) {
	t.Helper()
	in := r.Inputs
	if want := []BaseImage{{Ref: e.base, Digest: e.baseIndex.String()}}; !reflect.DeepEqual(in.BaseImages, want) {
		t.Errorf("base images %+v, want %+v (amd64 manifest %s)", in.BaseImages, want, e.baseAMD64)
	}
	if in.SourceCommit != commit {
		t.Errorf("source commit %q, want %q", in.SourceCommit, commit)
	}
	if !reflect.DeepEqual(in.Artifacts, artifacts) {
		t.Errorf("artifacts %+v, want %+v", in.Artifacts, artifacts)
	}
	if in.Started.IsZero() || in.Finished.Before(in.Started) || in.Finished.Sub(in.Started) > r.Duration {
		t.Errorf("build ran %s … %s; Build took %s", in.Started, in.Finished, r.Duration)
	}
	if in.BuilderVersion == "" {
		t.Error("no builder version")
	}
	if strings.Contains(log.String(), "WARNING: provenance") {
		t.Errorf("log has warnings:\n%s", log.String())
	}
}

func requirePlatform(t testing.TB, platforms []string, p string) {
	t.Helper()
	if !containsString(platforms, p) {
		testenv.Missing(t, "buildkitd cannot build "+p+" (install qemu-user-static and enable binfmt_misc: scripts/deps.sh buildkit)")
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkPushed checks that repo has r as a single-platform image manifest with s's platform
// and labels, and the right program in it; it returns the image.
func checkPushed(t *testing.T, repo string, r Result, s Spec) v1.Image {
	t.Helper()
	ref, err := name.NewDigest(repo+"@"+r.Digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.OCIManifestSchema1 || string(desc.MediaType) != r.MediaType || desc.Size != r.Size {
		t.Errorf("%s: registry has %s (%d bytes), result says %s (%d bytes); want an OCI image manifest",
			s.JobID, desc.MediaType, desc.Size, r.MediaType, r.Size)
	}
	if r.Platform != s.Platform.String() || r.Duration <= 0 {
		t.Errorf("%s: result platform %q duration %s", s.JobID, r.Platform, r.Duration)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img, s)
	return img
}

func checkImage(t *testing.T, img v1.Image, s Spec) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != s.Platform.OS || cf.Architecture != s.Platform.Arch || cf.Variant != "" {
		t.Errorf("%s: config platform %s/%s/%s", s.JobID, cf.OS, cf.Architecture, cf.Variant)
	}
	for k, v := range s.Labels {
		if cf.Config.Labels[k] != v {
			t.Errorf("%s: label %s = %q, want %q", s.JobID, k, cf.Config.Labels[k], v)
		}
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[s.Platform.Arch]
	for _, f := range []string{"opt/app/hello", "bin/busybox"} { // the download, and the unpinned base
		if m := elfMachine(t, fileInImage(t, img, f)); m != machine {
			t.Errorf("%s: %s is a %s ELF, want %s", s.JobID, f, m, machine)
		}
	}
}

func elfMachine(t *testing.T, b []byte) elf.Machine {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not an ELF: %v", err)
	}
	return f.Machine
}

// fileInImage returns the content of a regular file in the image's layers (the last layer that
// has it).
func fileInImage(t *testing.T, img v1.Image, p string) []byte {
	t.Helper()
	var found []byte
	testenv.EachEntry(t, img, func(h *tar.Header, r io.Reader) {
		if strings.TrimPrefix(h.Name, "./") == p && h.Typeflag == tar.TypeReg {
			var err error
			if found, err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
	})
	if found == nil {
		t.Fatalf("no %s in the image", p)
	}
	return found
}

// checkLayout checks that the layout at dir has r's manifest and every blob it names, and no
// tag.
func checkLayout(t *testing.T, dir string, r Result, s Spec) {
	t.Helper()
	p := layout.Path(dir)
	if b, err := os.ReadFile(filepath.Join(dir, "oci-layout")); err != nil || !strings.Contains(string(b), `"imageLayoutVersion"`) {
		t.Errorf("oci-layout: %q, %v", b, err)
	}
	h, err := v1.NewHash(r.Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if r.MediaType != string(types.OCIManifestSchema1) || r.Size != int64(len(raw)) {
		t.Errorf("result %s %d bytes, manifest blob %d bytes", r.MediaType, r.Size, len(raw))
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		st, err := os.Stat(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil || st.Size() != d.Size {
			t.Errorf("blob %s (%d bytes): %v", d.Digest, d.Size, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the build wrote index.json (%v); listing and tagging are the publisher's", err)
	}
	// list it as the publisher would, to read it as an image
	if _, err := layout.Write(dir, empty.Index); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendDescriptor(v1.Descriptor{MediaType: types.MediaType(r.MediaType), Digest: h, Size: r.Size}); err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img, s)
	tmp, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", ".tmp-*"))
	if len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// gitDaemon commits files to a new repository, tags the commit (tag, and an annotated tag
// tag+"-a"), serves it with `git daemon` on loopback, and returns its git:// URL and the
// commit.
func gitDaemon(t *testing.T, files map[string]string, tag string) (url, commit string) {
	t.Helper()
	if err := exec.Command("git", "daemon", "--help").Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) { // --help exits non-zero when it prints a man page; only a missing command matters
			t.Skipf("git daemon is not available: %v", err)
		}
	}
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	for p, s := range files {
		write(t, filepath.Join(repo, p), s)
	}
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(repo, "init", "-q")
	git(repo, "add", ".")
	git(repo, "commit", "-q", "-m", "fixture")
	git(repo, "tag", tag)
	git(repo, "tag", "-a", "-m", "annotated", tag+"-a")
	commit = git(repo, "rev-parse", "HEAD")
	git(root, "clone", "-q", "--bare", "repo", "repo.git")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
		fmt.Sprintf("--port=%d", port), "--base-path="+root, root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// git daemon forks a process per connection: stop them all with the group, and the daemon
	// if the test binary dies without cleaning up
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Skipf("git daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // its process group: the daemon and its children
		_ = cmd.Wait()
	})
	url = fmt.Sprintf("git://127.0.0.1:%d/repo.git", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := exec.Command("git", "ls-remote", url).Run(); err == nil {
			return url, commit
		}
		if time.Now().After(deadline) {
			t.Skipf("git daemon on port %d does not answer:\n%s", port, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
