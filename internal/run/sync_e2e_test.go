package run

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// e2e is the real world of the sync tests: docker-registry, buildkitd (arm64 through qemu), a
// busybox base image, and the fixture upstream serving per-arch release tarballs.
type e2e struct {
	reg     string // host:port
	ns      string // host:port/mirror
	up      *fakeupstream.Server
	cfgPath string
	dir     string
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	w := testenv.NewWorld(t)
	return &e2e{reg: w.Registry, ns: w.Namespace, up: w.Upstream, dir: w.Dir, cfgPath: w.ConfigPath}
}

func (e *e2e) sync(t *testing.T, apps ...string) Report {
	t.Helper()
	cfg, err := config.Load(e.cfgPath, discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Select(apps...); err != nil {
		t.Fatal(err)
	}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (e *e2e) index(t *testing.T, repo, tag string) (v1.ImageIndex, v1.Hash) {
	t.Helper()
	ref, err := name.NewTag(e.ns + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	d, _ := idx.Digest()
	return idx, d
}

func (e *e2e) exists(t *testing.T, repo, tag string) bool {
	t.Helper()
	ref, _ := name.NewTag(e.ns + "/" + repo + ":" + tag)
	_, err := remote.Head(ref)
	return err == nil
}

func platformsOf(t *testing.T, idx v1.ImageIndex) map[string]v1.Hash {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		if d.Platform == nil {
			t.Fatalf("index entry %s has no platform", d.Digest)
		}
		out[d.Platform.OS+"/"+d.Platform.Architecture+variant(d.Platform.Variant)] = d.Digest
	}
	return out
}

func variant(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// extract writes the named files of img's filesystem under dir and returns their contents.
func extract(t *testing.T, img v1.Image, dir string, names ...string) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, h.Name) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
		p := filepath.Join(dir, h.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// runProgram extracts the fixture program from an image and runs it (arm64 through qemu's
// binfmt registration), returning its ELF machine and output.
func runProgram(t *testing.T, img v1.Image) (elf.Machine, string) {
	t.Helper()
	dir := t.TempDir()
	extract(t, img, dir, "opt/hello/bin/hello", "opt/hello/VERSION")
	bin := filepath.Join(dir, "opt/hello/bin/hello")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the image has no fixture program: %v", err)
	}
	defer f.Close()
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("running %s: %v\n%s", f.Machine, err, out)
	}
	return f.Machine, strings.TrimSpace(string(out))
}

func TestSyncEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with BuildKit")
	}
	e := newE2E(t)

	// First sync: everything in the window is built and published.
	rep := e.sync(t)
	if rep.Failed() {
		t.Fatalf("first sync failed:\n%s", describe(rep))
	}
	for _, v := range []string{"1.1.1", "2.1.0", "2.0.0", "1.1.0"} {
		idx, _ := e.index(t, "hello", v)
		ps := platformsOf(t, idx)
		if len(ps) != 2 || ps["linux/amd64"] == (v1.Hash{}) || ps["linux/arm64"] == (v1.Hash{}) {
			t.Errorf("hello:%s platforms = %v, want exactly linux/amd64 and linux/arm64", v, ps)
		}
		m, _ := idx.IndexManifest()
		if m.MediaType != types.OCIImageIndex || m.Annotations["org.opencontainers.image.version"] != v {
			t.Errorf("hello:%s index %s annotations %v", v, m.MediaType, m.Annotations)
		}
	}
	for _, u := range rep.Units {
		if u.Latest != (u.Version == "2.1.0" && u.App != "twostep" || u.Version == "0.3.0") {
			t.Errorf("unit %s %s latest = %v", u.Component, u.Version, u.Latest)
		}
	}
	idx, latestWant := e.index(t, "hello", "2.1.0")
	if _, d := e.index(t, "hello", "latest"); d != latestWant {
		t.Errorf("latest = %s, want hello:2.1.0 (%s): the highest version, not the newest release (1.1.1)", d, latestWant)
	}
	if e.exists(t, "hello", "2.0.0-rc1") || e.exists(t, "hello", "1.0.0") {
		t.Error("a pre-release or a version outside the window was published")
	}
	for arch, want := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		img, err := idx.Image(platformsOf(t, idx)["linux/"+arch])
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != arch || cf.Config.Labels["org.opencontainers.image.version"] != "2.1.0" {
			t.Errorf("%s image: architecture %q, labels %v", arch, cf.Architecture, cf.Config.Labels)
		}
		machine, out := runProgram(t, img)
		if machine != want || out != "hello 2.1.0 linux/"+arch {
			t.Errorf("%s image runs %s printing %q", arch, machine, out)
		}
	}
	// The fork carries the fork's binary (patched in by insert-after + replace).
	fork, _ := e.index(t, "hello-fork", "2.1.0")
	forkImg, _ := fork.Image(platformsOf(t, fork)["linux/arm64"])
	if out := forkEcho(t, forkImg); out != "hello-fork 2.1.0" {
		t.Errorf("hello-fork runs %q", out)
	}
	// twostep's app is built FROM its own version's base, by digest.
	if !e.exists(t, "twostep", "0.3.0") || !e.exists(t, "twostep-base", "0.3.0") || !e.exists(t, "twostep", "latest") {
		t.Error("twostep 0.3.0 not published with its base")
	}

	// Second sync: nothing to build, nothing pushed.
	counter := &testenv.Counter{}
	cfg, _ := config.Load(e.cfgPath, discover.SourceKinds())
	before := e.up.Requests.Load()
	rep2, err := Sync(context.Background(), cfg, SyncOptions{Options: Options{Target: []target.Option{target.WithTransport(counter)}}})
	if err != nil || rep2.Failed() {
		t.Fatalf("second sync: %v\n%s", err, describe(rep2))
	}
	if len(rep2.Jobs) != 0 {
		t.Errorf("second sync ran %d jobs", len(rep2.Jobs))
	}
	if w := counter.Writes(); w != 0 {
		t.Errorf("second sync wrote %d times to the registry", w)
	}
	t.Logf("second sync: %d registry requests, %d upstream requests", counter.Count(), e.up.Requests.Load()-before)

	// Repair: hello:2.0.0 loses its arm64 image; the next sync builds only that, and the amd64
	// digest is unchanged.
	old, _ := e.index(t, "hello", "2.0.0")
	amd := platformsOf(t, old)["linux/amd64"]
	e.retagWithout(t, "hello", "2.0.0", "linux/arm64")
	rep3 := e.sync(t, "hello")
	if rep3.Failed() || len(rep3.Jobs) != 1 || rep3.Jobs[0].ID != "hello/hello/2.0.0/linux-arm64" {
		t.Fatalf("repair sync: %s", describe(rep3))
	}
	if u := rep3.Units[0]; u.Status != publish.Repaired {
		t.Errorf("unit = %+v", u)
	}
	fixed, _ := e.index(t, "hello", "2.0.0")
	ps := platformsOf(t, fixed)
	if ps["linux/amd64"] != amd || ps["linux/arm64"] == (v1.Hash{}) {
		t.Errorf("repaired platforms %v, want amd64 %s kept", ps, amd)
	}
	if _, d := e.index(t, "hello", "latest"); d != latestWant {
		t.Error("latest moved during a repair of a lower version")
	}
}

// forkEcho reads the fork's program, a shell script ("echo hello-fork V"), from the image and
// returns what it would print.
func forkEcho(t *testing.T, img v1.Image) string {
	t.Helper()
	script, ok := extract(t, img, t.TempDir(), "opt/hello/bin/hello")["opt/hello/bin/hello"]
	if !ok {
		t.Fatal("no /opt/hello/bin/hello in the fork image")
	}
	s := string(script)
	if i := strings.Index(s, "echo "); i >= 0 {
		return strings.TrimSpace(s[i+5:])
	}
	return ""
}

// retagWithout re-publishes repo:tag as an index without one platform (an interrupted or
// partial earlier mirror).
func (e *e2e) retagWithout(t *testing.T, repo, tag, drop string) {
	t.Helper()
	idx, _ := e.index(t, repo, tag)
	m, _ := idx.IndexManifest()
	var keep []mutate.IndexAddendum
	for _, d := range m.Manifests {
		if d.Platform.OS+"/"+d.Platform.Architecture == drop {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, mutate.IndexAddendum{Add: img, Descriptor: d})
	}
	partial := mutate.Annotations(mutate.IndexMediaType(mutate.AppendManifests(empty.Index, keep...), types.OCIImageIndex), m.Annotations).(v1.ImageIndex)
	ref, _ := name.NewTag(e.ns + "/" + repo + ":" + tag)
	if err := remote.WriteIndex(ref, partial); err != nil {
		t.Fatal(err)
	}
}

func TestSyncFailuresStayLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with BuildKit")
	}
	e := newE2E(t)
	// hello 1.1.1's arm64 tarball and 2.1.0's amd64 one are gone upstream (404s), and the
	// fork's replace patch no longer matches the Dockerfile (upstream drift).
	e.up.SetFile(fixture.TarballPath("1.1.1", "arm64"), nil)
	e.up.SetFile(fixture.TarballPath("2.1.0", "amd64"), nil)
	text, _ := os.ReadFile(e.cfgPath)
	os.WriteFile(e.cfgPath, []byte(strings.Replace(string(text), "match: 'tar -xzf - -C /opt ;'", "match: 'tar -xvz$'", 1)), 0o644)

	rep := e.sync(t, "hello", "hello-fork")
	if !rep.Failed() {
		t.Fatal("sync with a failing job did not report failure")
	}
	byID := map[string]JobResult{}
	for _, j := range rep.Jobs {
		byID[j.ID] = j
	}
	bad := byID["hello/hello/1.1.1/linux-arm64"]
	if bad.Status != JobFailed || !strings.Contains(bad.Error, "404") || bad.Log == "" {
		t.Errorf("404 job = %+v", bad)
	}
	if log, _ := os.ReadFile(bad.Log); !strings.Contains(string(log), "404") {
		t.Errorf("the job's log does not show the cause:\n%s", log)
	}
	if e.exists(t, "hello", "1.1.1") || e.exists(t, "hello", "2.1.0") {
		t.Error("a version was tagged although one of its platforms failed to build")
	}
	for _, v := range []string{"2.0.0", "1.1.0"} {
		if !e.exists(t, "hello", v) {
			t.Errorf("hello:%s not published: one failing version stopped the others", v)
		}
	}
	// The highest version failed: latest is the highest complete one.
	if _, l := e.index(t, "hello", "latest"); l != func() v1.Hash { _, d := e.index(t, "hello", "2.0.0"); return d }() {
		t.Errorf("latest = %s, want hello:2.0.0", l)
	}
	drift := byID["hello-fork/hello-fork/2.1.0/linux-amd64"]
	if drift.Status != JobFailed || !strings.Contains(drift.Error, "tar -xvz$") || !strings.Contains(drift.Error, "Dockerfile") {
		t.Errorf("patch drift job = %+v", drift)
	}
	if e.exists(t, "hello-fork", "2.1.0") {
		t.Error("hello-fork:2.1.0 was tagged although its patch failed")
	}
}

func describe(r Report) string {
	var b strings.Builder
	for _, j := range r.Jobs {
		b.WriteString(j.ID + " " + string(j.Status) + " " + j.Error + "\n")
	}
	for _, u := range r.Units {
		b.WriteString(u.Component + " " + u.Version + " " + string(u.Status) + " " + u.Error + "\n")
	}
	for _, a := range r.Plan.Apps {
		if a.Error != "" {
			b.WriteString(a.Name + ": " + a.Error + "\n")
		}
	}
	return b.String()
}

// sync into an OCI layout directory gives the same indexes and tags on disk.
func TestSyncIntoLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with BuildKit")
	}
	e := newE2E(t)
	mirror := filepath.Join(t.TempDir(), "mirror")
	text, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	from, to := "registry: "+strconv.Quote(e.ns), "registry: "+strconv.Quote("oci:"+mirror)
	if !strings.Contains(string(text), from) {
		t.Fatalf("the config has no %s:\n%s", from, text)
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Replace(string(text), from, to, 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	rep := e.sync(t, "hello")
	if rep.Failed() {
		t.Fatalf("sync into a layout failed:\n%s", describe(rep))
	}
	p, rm := testenv.Layout(t, filepath.Join(mirror, "hello"))
	tags := map[string]v1.Hash{}
	for _, d := range rm.Manifests {
		tags[d.Annotations["org.opencontainers.image.ref.name"]] = d.Digest
	}
	for _, v := range []string{"1.1.1", "2.1.0", "2.0.0", "1.1.0"} {
		d, ok := tags[v]
		if !ok {
			t.Errorf("layout has no tag %s (tags: %v)", v, tags)
			continue
		}
		idx, err := p.ImageIndex(d)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		ps := platformsOf(t, idx)
		if len(ps) != 2 {
			t.Errorf("%s: platforms %v", v, ps)
		}
		img, err := idx.Image(ps["linux/arm64"])
		if err != nil {
			t.Fatalf("%s arm64 image not in the layout: %v", v, err)
		}
		if machine, out := runProgram(t, img); machine != elf.EM_AARCH64 || out != "hello "+v+" linux/arm64" {
			t.Errorf("%s arm64: %s %q", v, machine, out)
		}
	}
	if tags["latest"] != tags["2.1.0"] {
		t.Errorf("latest = %s, want 2.1.0's %s", tags["latest"], tags["2.1.0"])
	}
	if again := e.sync(t, "hello"); again.Failed() || len(again.Jobs) != 0 {
		t.Errorf("second sync into the layout: %s", describe(again))
	}
}
