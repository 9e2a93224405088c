package run

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/testenv"
)

// hostileUpstream is what the hostile app's upstream tries: tags that are not tags, a second
// tag for one version, and releases whose repository (a git context, as real upstreams have)
// reaches for the host — a COPY from outside the context, an ADD of an absolute path, a
// symlink out, a Dockerfile that is a symlink to a file of the host, and a release tarball whose
// symlink and paths climb out of where it is unpacked.
type hostileUpstream struct {
	secret, marker string // a host file, and its content, that nothing may read
	canary         string // a host directory, outside every temp dir of the test, that nothing may create
}

func newHostileUpstream(t *testing.T) *hostileUpstream {
	var r [8]byte
	rand.Read(r[:])
	h := &hostileUpstream{
		marker: "HOST-SECRET-" + hex.EncodeToString(r[:]),
		secret: filepath.Join(t.TempDir(), "secret.txt"),
		canary: "/tmp/archmirror-hostile-canary-" + hex.EncodeToString(r[:]),
	}
	if err := os.WriteFile(h.secret, []byte(h.marker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(h.canary) })
	return h
}

// releases are acme/hostile's GitHub releases, newest first.
func (h *hostileUpstream) releases() []fakeupstream.Release {
	day := func(n int) time.Time { return fixture.Epoch.AddDate(0, 0, n) }
	return []fakeupstream.Release{
		{Tag: "v1;rm -rf /", Name: "v1;rm -rf /", Published: day(20)},
		{Tag: "../../x", Name: "../../x", Published: day(20)},
		{Tag: "{{.Env.X}}", Name: "{{.Env.X}}", Published: day(20)},
		{Tag: "v2.9.0\x1b[2J", Name: "a terminal escape", Published: day(20)},
		{Tag: "1." + strings.Repeat("9", 1<<20), Name: "a 1 MB tag", Published: day(20)},
		{Tag: "v2.4.0", Name: "tarball with an escaping symlink", Published: day(14)},
		{Tag: "v2.3.0", Name: "Dockerfile -> the host's secret", Published: day(13)},
		{Tag: "v2.2.0", Name: "COPY evil/passwd, evil -> /etc", Published: day(12)},
		{Tag: "v2.1.0", Name: "ADD /etc/shadow", Published: day(11)},
		{Tag: "v2.0.0", Name: "COPY ../../etc/passwd", Published: day(10)},
		// the good release; its name and asset are hostile text, which nothing uses
		{Tag: "v1.0.0", Name: "$(mkdir " + h.canary + ") {{.Env.HOME}} \x1b[2J", Published: day(2),
			Assets: []fakeupstream.Asset{{Name: "../../../etc/passwd", Size: 1}}},
		// a second tag for 1.0.0, older: discovery keeps v1.0.0 (if it built this one, it would fail)
		{Tag: "1.0.0", Name: "duplicate", Published: day(1)},
	}
}

// repository is acme/hostile's git repository: one tag per release, each tree carrying links
// out of it (used or not).
func (h *hostileUpstream) repository(base string) []fakeupstream.GitTag {
	file := func(s string) fakeupstream.GitFile { return fakeupstream.GitFile{Body: []byte(s)} }
	tree := func(dockerfile fakeupstream.GitFile) map[string]fakeupstream.GitFile {
		return map[string]fakeupstream.GitFile{
			"Dockerfile": dockerfile,
			"note.txt":   file("from the repository\n"),
			"evil":       {Link: "/etc"},
			"up":         {Link: "../../.."},
			"secret":     {Link: filepath.Dir(h.secret)},
			"canary":     {Link: h.canary},
		}
	}
	from := "FROM " + base + "\n"
	return []fakeupstream.GitTag{
		{Name: "1.0.0", Files: tree(file(from + "RUN echo the duplicate tag was built ; exit 1\n"))},
		{Name: "v1.0.0", Files: tree(file(from + "COPY . /src/\n"))},
		{Name: "v2.0.0", Files: tree(file(from + "COPY ../../etc/passwd /x\n"))},
		{Name: "v2.1.0", Files: tree(file(from + "ADD /etc/shadow /x\n"))},
		{Name: "v2.2.0", Files: tree(file(from + "COPY evil/passwd /x\n"))},
		{Name: "v2.3.0", Files: tree(fakeupstream.GitFile{Link: h.secret})},
		{Name: "v2.4.0", Files: tree(file(from + "ARG PACKAGE\n" +
			// a lenient Dockerfile: whatever tar manages to unpack is kept; then a write
			// through a link to /
			"RUN mkdir -p /opt && wget -q -O /tmp/app.tgz \"$PACKAGE\" && (tar -xzf /tmp/app.tgz -C /opt || true)" +
			" && ln -s / /opt/root && mkdir -p /opt/root" + h.canary + " && echo pwned > /opt/root" + h.canary + "/through-link\n"))},
	}
}

// tarball is v2.4.0's release tarball: app/evil -> /, then files written through it, up
// through "..", and at an absolute path, all aimed at the canary.
func (h *hostileUpstream) tarball(t *testing.T) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	c := strings.TrimPrefix(h.canary, "/")
	for _, e := range []tar.Header{
		{Name: "app/VERSION", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "app/evil", Typeflag: tar.TypeSymlink, Linkname: "/", Mode: 0o777},
		{Name: "app/evil/" + c + "/through-link", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "../../../../../../../../" + c + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "/" + c + "/absolute", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		body := []byte("pwned\n")
		if e.Typeflag == tar.TypeReg {
			e.Size = int64(len(body))
		}
		e.ModTime = fixture.Epoch
		if err := tw.WriteHeader(&e); err != nil {
			t.Fatal(err)
		}
		if e.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// TestSyncHostileUpstream syncs a well-behaved app (the fixture's hello) and a hostile one in
// one run against the real registry and BuildKit. The good app is untouched by its
// neighbour; each hostile release is either left out by discovery (with the reason), fails
// with an error naming the app and version (and nothing is tagged for it), or builds with
// whatever it did confined to its own image; no host file is read or created.
func TestSyncHostileUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with BuildKit")
	}
	w := testenv.NewWorld(t)
	h := newHostileUpstream(t)

	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(w.ConfigPath, text, discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	upstream := cfg.Apps[slices.IndexFunc(cfg.Apps, func(a *config.App) bool { return a.Name == "hello" })].Source.API
	repo := filepath.Join(t.TempDir(), "hostile.git")
	if err := fakeupstream.WriteGitRepo(t.Context(), repo, h.repository(w.Registry+"/base:latest")); err != nil {
		t.Fatal(err)
	}
	w.Upstream.ServeGit("acme/hostile", repo)
	w.Upstream.SetReleases("acme/hostile", h.releases())
	tb := h.tarball(t)
	for _, arch := range fixture.Arches {
		w.Upstream.SetFile("hostile/hostile-2.4.0-linux-"+arch+".tar.gz", tb)
	}
	text = fmt.Appendf(text, `
  hostile:                    # an upstream that tries to escape (hostile_e2e_test.go)
    source: {github: acme/hostile, api: %[1]q}
    versions: {max: 10}
    platforms: [linux/amd64]  # what is hostile here is not the platform: half the builds
    components:
      hostile:
        context: "%[1]s/git/acme/hostile.git#{{.Tag}}"
        args:
          PACKAGE: "%[1]s/files/hostile/hostile-{{.Version}}-{{.OS}}-{{.Arch}}.tar.gz"
`, upstream)
	if err := os.WriteFile(w.ConfigPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(w.ConfigPath, discover.SourceKinds()); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if err := cfg.Select("hello", "hostile"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sync of hello and hostile: %s\n%s", time.Since(start).Round(time.Millisecond), describe(rep))
	if !rep.Failed() {
		t.Error("the run does not report the hostile failures")
	}

	// Discovery left out every tag that is not one, cut short and escaped in the report, and
	// the older of the two tags of 1.0.0.
	for _, a := range rep.Plan.Apps {
		if a.Error != "" {
			t.Errorf("app %s failed as a whole: %s", a.Name, a.Error)
		}
		if a.Name != "hostile" {
			continue
		}
		reasons := map[string]string{}
		for _, s := range a.Skipped {
			reasons[s.Tag] = s.Reason
			if len(s.Tag) > 200 || strings.ContainsAny(s.Tag, "\x1b\n") {
				t.Errorf("skipped tag reported as %.100q (%d bytes): not cut short or escaped", s.Tag, len(s.Tag))
			}
		}
		for _, tag := range []string{`"v1;rm -rf /"`, `"../../x"`, `"{{.Env.X}}"`, `"v2.9.0\x1b[2J"`} {
			if reasons[tag] != "not a valid OCI tag" {
				t.Errorf("tag %s: skipped %q, want as not a valid OCI tag (skipped: %v)", tag, reasons[tag], reasons)
			}
		}
		if r := reasons["1.0.0"]; !strings.Contains(r, "duplicate of version 1.0.0 (tag v1.0.0") {
			t.Errorf("tag 1.0.0: skipped %q, want as a duplicate of v1.0.0", r)
		}
		if len(a.Skipped) != 6 {
			t.Errorf("%d tags skipped, want 6: %v", len(a.Skipped), reasons)
		}
	}

	// Each hostile version failed, with an error that names the app and the version and says
	// why; nothing of the host leaked into errors or logs, and every log is in the cache dir.
	causes := map[string]string{
		"2.0.0": `"/etc/passwd": not found`,
		"2.1.0": `"/etc/shadow": not found`,
		"2.2.0": `"/evil/passwd": not found`,
		"2.3.0": `"Dockerfile" is a symlink to "` + h.secret + `", outside the context: refused`,
	}
	units := map[string]UnitResult{}
	for _, u := range rep.Units {
		units[u.App+" "+u.Version] = u
	}
	built := map[string]int{}
	for _, j := range rep.Jobs {
		if j.Status == JobBuilt {
			built[j.App+" "+j.Version]++
		}
		if rel, err := filepath.Rel(w.Dir, j.Log); j.Log != "" && (err != nil || !filepath.IsLocal(rel)) {
			t.Errorf("job %s logged to %s, outside the test's directory", j.ID, j.Log)
		}
		logText, _ := os.ReadFile(j.Log)
		if strings.Contains(j.Error, h.marker) || bytes.Contains(logText, []byte(h.marker)) || strings.Contains(j.Error, "root:x:0:0") {
			t.Errorf("job %s: the host's files leaked into its error or log", j.ID)
		}
		if strings.ContainsAny(j.Error, "\x1b\x07\r") {
			t.Errorf("job %s: error carries control characters: %q", j.ID, j.Error)
		}
		cause, hostile := causes[j.Version]
		if j.App != "hostile" || !hostile {
			if j.Status != JobBuilt {
				t.Errorf("job %s %s: %s", j.ID, j.Status, j.Error)
			}
			continue
		}
		// The result names the job (app, component, version, platform); its error, the cause.
		if j.Status != JobFailed || !strings.HasPrefix(j.ID, "hostile/hostile/"+j.Version+"/") || !strings.Contains(j.Error, cause) || strings.Contains(j.Error, j.ID) {
			t.Errorf("job %s %s: %q\nwant failed because %s, the job named once, by the result", j.ID, j.Status, j.Error, cause)
		}
		if _, ok := units["hostile "+j.Version]; ok {
			t.Errorf("hostile %s was published although its jobs failed", j.Version)
		}
	}

	// Nothing is tagged for a hostile version that failed, nor for a skipped tag: the
	// repository holds exactly the versions that built, and latest.
	hostileRepo, _ := name.NewRepository(w.Namespace + "/hostile")
	tags, err := remote.List(hostileRepo)
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, tag := range tags {
		// archmirror's own records of built jobs (archmirror-build-VERSION-PLATFORM) are
		// tags too: a failed version has none
		for v := range causes {
			if strings.Contains(tag, v) {
				t.Errorf("tag %s names the failed version %s", tag, v)
			}
		}
		if !strings.HasPrefix(tag, "archmirror-") {
			versions = append(versions, tag)
		}
	}
	slices.Sort(versions)
	if want := []string{"1.0.0", "2.4.0", "latest"}; !slices.Equal(versions, want) {
		t.Errorf("hostile tags = %v, want %v (and archmirror's own)", tags, want)
	}

	// The good app is as if it had run alone: every version complete, latest on the highest.
	for _, v := range []string{"1.1.1", "2.1.0", "2.0.0", "1.1.0"} {
		u, ok := units["hello "+v]
		if !ok || u.Status != publish.Published || u.Error != "" || built["hello "+v] != 2 {
			t.Errorf("hello %s: %+v, %d platforms built", v, u, built["hello "+v])
			continue
		}
		idx := remoteIndex(t, w.Namespace+"/hello:"+v)
		if ps := platformsOf(t, idx); len(ps) != 2 || ps["linux/amd64"] == (v1.Hash{}) || ps["linux/arm64"] == (v1.Hash{}) {
			t.Errorf("hello:%s platforms %v", v, ps)
		}
	}
	if !units["hello 2.1.0"].Latest || !units["hostile 2.4.0"].Latest {
		t.Errorf("latest not on hello 2.1.0 and hostile 2.4.0: %+v %+v", units["hello 2.1.0"], units["hostile 2.4.0"])
	}

	// hostile 1.0.0 is the v1.0.0 tag's build, its repository's links copied as links.
	// 2.4.0's tarball and RUN wrote through links and up ".." into the image's filesystem,
	// never the host's.
	for _, v := range []string{"1.0.0", "2.4.0"} {
		if u := units["hostile "+v]; u.Status != publish.Published || built["hostile "+v] != 1 {
			t.Errorf("hostile %s: %+v", v, u)
		}
	}
	idx := remoteIndex(t, w.Namespace+"/hostile:1.0.0")
	if m, _ := idx.IndexManifest(); m.Annotations["io.archmirror.upstream.ref"] != "v1.0.0" {
		t.Errorf("hostile:1.0.0 built from %q, want the tag v1.0.0", m.Annotations["io.archmirror.upstream.ref"])
	}
	entries := layerEntries(t, idx)
	for link, target := range map[string]string{"src/evil": "/etc", "src/up": "../../..", "src/secret": filepath.Dir(h.secret), "src/canary": h.canary} {
		if got := entries[link]; got != "-> "+target {
			t.Errorf("hostile:1.0.0 %s is %q, want the link itself (-> %s)", link, got, target)
		}
	}
	c := strings.TrimPrefix(h.canary, "/")
	entries = layerEntries(t, remoteIndex(t, w.Namespace+"/hostile:2.4.0"))
	for _, f := range []string{c + "/through-link", "opt/" + c + "/dotdot", "opt/" + c + "/absolute"} {
		if entries[f] != "file" {
			t.Errorf("hostile:2.4.0 has no file %s: where did the write go? (%v)", f, entries)
		}
	}
	for f, what := range entries {
		if strings.Contains(what, h.marker) {
			t.Errorf("hostile image file %s holds the host's secret", f)
		}
	}
	if _, err := os.Lstat(h.canary); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a hostile release created %s on the host (%v)", h.canary, err)
	}
}

// layerEntries lists the files and links of the linux/amd64 image of idx, layer by layer:
// "file" (or the content, when it holds the word "SECRET"), "dir", or "-> target".
func layerEntries(t *testing.T, idx v1.ImageIndex) map[string]string {
	t.Helper()
	img, err := idx.Image(platformsOf(t, idx)["linux/amd64"])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	testenv.EachEntry(t, img, func(h *tar.Header, r io.Reader) {
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeSymlink:
			out[name] = "-> " + h.Linkname
		case tar.TypeDir:
			out[name] = "dir"
		default:
			b, _ := io.ReadAll(r)
			out[name] = "file"
			if bytes.Contains(b, []byte("SECRET")) {
				out[name] = string(b)
			}
		}
	})
	return out
}

func remoteIndex(t *testing.T, ref string) v1.ImageIndex {
	t.Helper()
	r, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	return idx
}
