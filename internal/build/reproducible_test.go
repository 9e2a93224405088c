package build

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/client"

	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/testenv"
)

func TestSolveOptEpoch(t *testing.T) {
	epoch := time.Date(2024, 5, 6, 7, 8, 9, 500, time.FixedZone("CEST", 2*3600))
	const unix = "1714972089" // 2024-05-06T05:08:09Z
	dfDir, ctxDir := t.TempDir(), t.TempDir()
	base := Spec{
		Platform: arm64,
		Context:  ctxDir,
		Args:     map[string]string{"PACKAGE": "https://example.com/app.tar.gz"},
		Labels:   map[string]string{"org.opencontainers.image.version": "1.2.3"},
	}
	push := func(s Spec) Spec { s.Push, s.Insecure = "127.0.0.1:5000/mirror/app", true; return s }
	layout := func(s Spec) Spec { s.Layout = "/srv/oci"; return s }
	withEpoch := func(s Spec) Spec { s.SourceDateEpoch = epoch; return s }
	withArg := func(s Spec) Spec {
		s.Args = map[string]string{"PACKAGE": s.Args["PACKAGE"], epochArg: "0"}
		return s
	}
	pushAttrs := map[string]string{
		"name": "127.0.0.1:5000/mirror/app", "push": "true", "push-by-digest": "true",
		"name-canonical": "true", "oci-mediatypes": "true", "registry.insecure": "true",
	}
	frontend := map[string]string{
		"platform": "linux/arm64", "filename": "Dockerfile", "dockerfilekey": "dockerfile",
		"build-arg:PACKAGE":                      "https://example.com/app.tar.gz",
		"label:org.opencontainers.image.version": "1.2.3",
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	for _, tt := range []struct {
		name     string
		spec     Spec
		frontend map[string]string
		exporter string
		attrs    map[string]string
	}{
		{"push", push(base), frontend, client.ExporterImage, pushAttrs},
		{"layout", layout(base), frontend, client.ExporterOCI, map[string]string{"oci-mediatypes": "true"}},
		{"push with epoch", push(withEpoch(base)),
			with(frontend, "build-arg:SOURCE_DATE_EPOCH", unix), client.ExporterImage,
			with(pushAttrs, "source-date-epoch", unix, "rewrite-timestamp", "true")},
		{"layout with epoch", layout(withEpoch(base)),
			with(frontend, "build-arg:SOURCE_DATE_EPOCH", unix), client.ExporterOCI,
			map[string]string{"oci-mediatypes": "true", "source-date-epoch": unix, "rewrite-timestamp": "true"}},
		// the config's arg wins; BuildKit hands the exporter the arg's epoch itself
		{"explicit arg and epoch", push(withArg(withEpoch(base))),
			with(frontend, "build-arg:SOURCE_DATE_EPOCH", "0"), client.ExporterImage,
			with(pushAttrs, "rewrite-timestamp", "true")},
		// an explicit arg alone is passed through, as any arg
		{"explicit arg", push(withArg(base)),
			with(frontend, "build-arg:SOURCE_DATE_EPOCH", "0"), client.ExporterImage, pushAttrs},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := solveOpt(tt.spec, false, dfDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if opt.Frontend != "dockerfile.v0" || !reflect.DeepEqual(opt.FrontendAttrs, tt.frontend) {
				t.Errorf("frontend %s attrs\n%v\nwant\n%v", opt.Frontend, opt.FrontendAttrs, tt.frontend)
			}
			if len(opt.Exports) != 1 {
				t.Fatalf("%d exports, want 1", len(opt.Exports))
			}
			ex := opt.Exports[0]
			if ex.Type != tt.exporter || !reflect.DeepEqual(ex.Attrs, tt.attrs) || ex.Output != nil {
				t.Errorf("export %s %v (output %v)\nwant   %s %v", ex.Type, ex.Attrs, ex.Output != nil, tt.exporter, tt.attrs)
			}
			if _, ok := opt.LocalMounts["context"]; !ok {
				t.Error("no context mount")
			}
		})
	}
}

// TestReproducible builds the same two-platform job on two buildkitds that share nothing but
// the registry, from two copies of the context written seconds apart, and wants the same
// manifest digests; with a different SourceDateEpoch, or none, the digests differ.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds on two buildkitds")
	}
	e := newEnv(t)
	b1 := NewBuildKit(e.addr)
	defer b1.Close()
	platforms, err := b1.Platforms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	requirePlatform(t, platforms, "linux/arm64")
	b2 := NewBuildKit(testenv.BuildKit(t, e.reg))
	defer b2.Close()

	epoch := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	repo := e.reg + "/mirror/repro"
	specs := func(epoch time.Time, layout string) []Spec {
		dir := e.context(t) // a fresh copy: new file times
		var ss []Spec
		for _, p := range []platform.Platform{amd64, arm64} {
			s := e.spec(t, p, dir, &bytes.Buffer{})
			s.SourceDateEpoch = epoch
			s.Push = repo
			if layout != "" {
				s.Push, s.Insecure, s.Layout = "", false, layout
			}
			ss = append(ss, s)
		}
		return ss
	}
	logTimes := func(what string, wall time.Duration, rs []Result) {
		t.Logf("%s: %s wall; amd64 %s, arm64 %s", what, wall.Round(10*time.Millisecond),
			rs[0].Duration.Round(10*time.Millisecond), rs[1].Duration.Round(10*time.Millisecond))
	}
	image := func(r Result, layout string) v1.Image {
		if layout != "" {
			return layoutImage(t, layout, r)
		}
		ref, err := name.NewDigest(repo+"@"+r.Digest, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// same builds the specs on b1, then on b2 a few seconds later from another context copy,
	// and wants one digest per platform.
	same := func(what string, b1, b2 *BuildKit, layout1, layout2 string) []Result {
		s1 := specs(epoch, layout1)
		r1, wall := buildAll(t, b1, s1...)
		logTimes(what+", cold on buildkitd 1", wall, r1)
		time.Sleep(2 * time.Second) // other second-resolution times, were any left
		s2 := specs(epoch, layout2)
		r2, wall := buildAll(t, b2, s2...)
		logTimes(what+", cold on buildkitd 2", wall, r2)
		for i := range r1 {
			img1, img2 := image(r1[i], layout1), image(r2[i], layout2)
			if r1[i].Digest != r2[i].Digest {
				t.Errorf("%s %s: buildkitd 1 built %s, buildkitd 2 %s:\n%s", what, s1[i].Platform, r1[i].Digest, r2[i].Digest, diffImages(t, img1, img2))
				continue
			}
			t.Logf("%s %s: %s on both", what, s1[i].Platform, r1[i].Digest)
			checkImage(t, img1, s1[i])
			checkEpoch(t, img1, e.base, s1[i].Platform, epoch)
		}
		return r1
	}

	var pushed []Result
	t.Run("Push", func(t *testing.T) { pushed = same("push", b1, b2, "", "") })

	t.Run("Layout", func(t *testing.T) {
		// two more buildkitds: nothing cached from the pushes
		b3, b4 := NewBuildKit(testenv.BuildKit(t, e.reg)), NewBuildKit(testenv.BuildKit(t, e.reg))
		defer b3.Close()
		defer b4.Close()
		l1, l2 := filepath.Join(t.TempDir(), "oci"), filepath.Join(t.TempDir(), "oci")
		r := same("layout", b3, b4, l1, l2)
		if a, b := blobs(t, l1), blobs(t, l2); !slices.Equal(a, b) {
			t.Errorf("the layouts differ:\n%v\n%v", a, b)
		}
		// the OCI exporter commits the image as the registry exporter does
		for i := range r {
			if pushed != nil && r[i].Digest != pushed[i].Digest {
				t.Errorf("%s: layout %s, pushed %s", r[i].Platform, r[i].Digest, pushed[i].Digest)
			}
		}
	})

	t.Run("OtherEpoch", func(t *testing.T) {
		if pushed == nil {
			t.Skip("no first build")
		}
		s := specs(epoch.Add(time.Hour), "")[0]
		r, _ := buildAll(t, b1, s)
		if r[0].Digest == pushed[0].Digest {
			t.Errorf("epochs %s and %s built one digest %s", epoch, epoch.Add(time.Hour), r[0].Digest)
		}
		checkEpoch(t, image(r[0], ""), e.base, s.Platform, epoch.Add(time.Hour))
	})

	// The control: without an epoch the fixture is not reproducible, so the checks above
	// can fail.
	t.Run("NoEpoch", func(t *testing.T) {
		s1 := specs(time.Time{}, "")
		r1, wall := buildAll(t, b1, s1...)
		logTimes("no epoch, on buildkitd 1", wall, r1)
		time.Sleep(time.Second)
		r2, wall := buildAll(t, b2, specs(time.Time{}, "")...)
		logTimes("no epoch, on buildkitd 2", wall, r2)
		for i := range r1 {
			if r1[i].Digest == r2[i].Digest {
				t.Errorf("%s: without an epoch both builds gave %s", s1[i].Platform, r1[i].Digest)
			} else {
				t.Logf("%s without an epoch: %s", s1[i].Platform, diffImages(t, image(r1[i], ""), image(r2[i], "")))
			}
		}
	})
}

// checkEpoch checks an image built with SourceDateEpoch epoch: its created time and the
// history of its own steps are epoch, and no file in the layers it added on base is newer.
func checkEpoch(t *testing.T, img v1.Image, base string, p platform.Platform, epoch time.Time) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("%s: created %s, want %s", p, cf.Created.Time, epoch)
	}
	for i, h := range cf.History {
		if h.Created.Time.After(epoch) {
			t.Errorf("%s: history %d (%s) created %s, after %s", p, i, h.CreatedBy, h.Created.Time, epoch)
		}
	}
	if n := len(cf.History); n == 0 || !cf.History[n-1].Created.Time.Equal(epoch) {
		t.Errorf("%s: the last step's history is not at %s: %+v", p, epoch, cf.History)
	}
	ref, err := name.ParseReference(base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := remote.Image(ref, remote.WithContext(t.Context()), remote.WithPlatform(v1.Platform{OS: p.OS, Architecture: p.Arch}))
	if err != nil {
		t.Fatal(err)
	}
	baseLayers := map[v1.Hash]bool{}
	bl, err := bimg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bl {
		d, _ := l.Digest()
		baseLayers[d] = true
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, l := range layers {
		if d, _ := l.Digest(); baseLayers[d] {
			continue
		}
		added++
		for _, h := range tarHeaders(t, l) {
			for what, tm := range map[string]time.Time{"mtime": h.ModTime, "atime": h.AccessTime, "ctime": h.ChangeTime} {
				if tm.After(epoch) {
					t.Errorf("%s: %s has %s %s, after %s", p, h.Name, what, tm, epoch)
				}
			}
		}
	}
	if added == 0 {
		t.Errorf("%s: no layer on the base's", p)
	}
}

func tarHeaders(t *testing.T, l v1.Layer) []*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hs []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

// diffImages says how two images differ: the config's lines and each differing layer's tar
// entries.
func diffImages(t *testing.T, a, b v1.Image) string {
	t.Helper()
	var out strings.Builder
	ca, err := a.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, cb) {
		out.WriteString("config:\n" + diffLines(indentJSON(ca), indentJSON(cb)))
	}
	la, err := a.Layers()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(la) != len(lb) {
		fmt.Fprintf(&out, "%d layers, %d layers\n", len(la), len(lb))
		return out.String()
	}
	for i := range la {
		da, _ := la[i].Digest()
		db, _ := lb[i].Digest()
		if da == db {
			continue
		}
		ua, _ := la[i].DiffID()
		ub, _ := lb[i].DiffID()
		fmt.Fprintf(&out, "layer %d: %s (diff %s), %s (diff %s)\n", i, da, ua, db, ub)
		out.WriteString(diffLines(describeTar(tarHeaders(t, la[i])), describeTar(tarHeaders(t, lb[i]))))
	}
	if out.Len() == 0 {
		out.WriteString("same config and layers (the manifests differ)\n")
	}
	return out.String()
}

func indentJSON(b []byte) []string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", " ") != nil {
		return []string{string(b)}
	}
	return strings.Split(buf.String(), "\n")
}

func describeTar(hs []*tar.Header) []string {
	var lines []string
	for _, h := range hs {
		lines = append(lines, fmt.Sprintf("%c %s %o %d:%d %d mtime %s pax %v", h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid, h.Size, h.ModTime.UTC().Format(time.RFC3339Nano), h.PAXRecords))
	}
	return lines
}

// diffLines lists the lines only one side has (a "-", b "+"), in order.
func diffLines(a, b []string) string {
	var out strings.Builder
	for _, l := range a {
		if !slices.Contains(b, l) {
			out.WriteString("  - " + l + "\n")
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out.WriteString("  + " + l + "\n")
		}
	}
	return out.String()
}

// layoutImage reads the image r from the layout at dir without an index.json (the build
// writes blobs only).
func layoutImage(t *testing.T, dir string, r Result) v1.Image {
	t.Helper()
	h, err := v1.NewHash(r.Digest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	img, err := blobImage(dir, raw)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// blobs lists an OCI layout's blobs.
func blobs(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// blobImage is the image whose manifest is raw, its config and layers read from the layout's
// blobs.
func blobImage(dir string, raw []byte) (v1.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(layoutBlobs{dir: dir, raw: raw, m: m})
}

type layoutBlobs struct {
	dir string
	raw []byte
	m   *v1.Manifest
}

func (l layoutBlobs) MediaType() (types.MediaType, error) { return l.m.MediaType, nil }
func (l layoutBlobs) RawManifest() ([]byte, error)        { return l.raw, nil }
func (l layoutBlobs) RawConfigFile() ([]byte, error) {
	return os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", l.m.Config.Digest.Hex))
}

func (l layoutBlobs) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range l.m.Layers {
		if d.Digest == h {
			return layoutLayer{path: filepath.Join(l.dir, "blobs", "sha256", h.Hex), d: d}, nil
		}
	}
	return nil, fmt.Errorf("no layer %s", h)
}

type layoutLayer struct {
	path string
	d    v1.Descriptor
}

func (l layoutLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l layoutLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l layoutLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l layoutLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// BenchmarkEpoch times one build of both platforms (concurrent, as a sync runs them) with and
// without SourceDateEpoch, on a buildkitd that holds the base image but none of the job's
// steps: each build downloads the release tarball again (a new PACKAGE URL), runs both RUN
// steps (arm64 through QEMU), exports and pushes. app=small is the fixture (a 1.5 MB program);
// app=64MiB adds 64 MiB of data that compresses about 2:1 to the release, so that the layers
// rewrite-timestamp decompresses and compresses again weigh what a real release's do.
//
// Each iteration builds once without and once with the epoch, alternating which goes first, so
// that a busy machine slows both alike: s/off and s/on are the mean wall time of one build.
func BenchmarkEpoch(b *testing.B) {
	e := newEnv(b)
	bk := NewBuildKit(e.addr)
	defer bk.Close()
	platforms, err := bk.Platforms(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	requirePlatform(b, platforms, "linux/arm64")

	big := map[string][]byte{}
	data := make([]byte, 64<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(data); i += 16 {
		v := r.Uint64()
		for j := range 16 {
			data[i+j] = 'a' + byte(v>>(4*j)&0xf) // 4 bits of entropy a byte
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		big["/app-"+arch+".tar.gz"] = appTarball(b, hello(b, arch), data)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := big[r.URL.Path]; ok {
			w.Write(b)
		} else {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	dir := e.context(b)
	n := 0
	build := func(b *testing.B, server string, epoch time.Time) time.Duration {
		n++
		var specs []Spec
		for _, p := range []platform.Platform{amd64, arm64} {
			s := e.spec(b, p, dir, &bytes.Buffer{})
			s.Push = e.reg + "/bench/app"
			s.Args["PACKAGE"] = fmt.Sprintf("%s/app-%s.tar.gz?n=%d", server, p.Arch, n)
			s.SourceDateEpoch = epoch
			specs = append(specs, s)
		}
		_, wall := buildAll(b, bk, specs...)
		return wall
	}
	build(b, e.srv.URL, time.Time{}) // pulls the base image
	epoch := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, app := range []struct{ name, server string }{{"small", e.srv.URL}, {"64MiB", srv.URL}} {
		b.Run("app="+app.name, func(b *testing.B) {
			var off, on time.Duration
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					off += build(b, app.server, time.Time{})
					on += build(b, app.server, epoch)
				} else {
					on += build(b, app.server, epoch)
					off += build(b, app.server, time.Time{})
				}
				i++
			}
			b.ReportMetric(off.Seconds()/float64(i), "s/off")
			b.ReportMetric(on.Seconds()/float64(i), "s/on")
			b.ReportMetric(100*(on.Seconds()/off.Seconds()-1), "%more")
		})
	}
}
