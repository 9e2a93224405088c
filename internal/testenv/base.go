package testenv

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DebsEnv overrides the directory BaseImage reads the busybox-static .debs from (default
// ~/.cache/archmirror/debs, filled by scripts/deps.sh debs).
const DebsEnv = "ARCHMIRROR_DEBS"

// BasePath is the PATH of the base image, Debian's default.
const BasePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BaseImage pushes a tiny two-platform (linux/amd64, linux/arm64) busybox image to
// registry/base:latest, built without BuildKit or any upstream registry from Debian's
// busybox-static packages: /bin/busybox, /bin/sh and a symlink for every applet (wget, tar,
// …), a root user, and PATH set. It returns the reference, the index digest and the linux/amd64
// manifest's digest. The image is the same bytes every time (fixed timestamps).
func BaseImage(t testing.TB, registry string) (ref string, index, amd64Manifest v1.Hash) {
	t.Helper()
	debs := debsDir(t)
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		Missing(t, "dpkg-deb is not installed (a Debian machine has it)")
	}
	roots := map[string]string{} // arch → extracted package
	for _, arch := range []string{"amd64", "arm64"} {
		m, _ := filepath.Glob(filepath.Join(debs, "busybox-static_*_"+arch+".deb"))
		if len(m) == 0 {
			Missing(t, "no busybox-static "+arch+" .deb in "+debs+" (scripts/deps.sh debs)")
			return
		}
		dir := filepath.Join(t.TempDir(), arch)
		if out, err := exec.Command("dpkg-deb", "-x", m[len(m)-1], dir).CombinedOutput(); err != nil {
			t.Fatalf("testenv: dpkg-deb -x %s: %v\n%s", m[len(m)-1], err, out)
		}
		roots[arch] = dir
	}
	applets := busyboxApplets(t, roots)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img := baseImage(t, roots[arch], arch, applets)
		if arch == "amd64" {
			d, err := img.Digest()
			if err != nil {
				t.Fatalf("testenv: base image: %v", err)
			}
			amd64Manifest = d
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	ref = registry + "/base:latest"
	index = Push(t, ref, idx)
	return ref, index, amd64Manifest
}

func debsDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(DebsEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return filepath.Join(home, ".cache", "archmirror", "debs")
}

func busybox(root string) string {
	for _, p := range []string{"bin/busybox", "usr/bin/busybox"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return filepath.Join(root, p)
		}
	}
	return ""
}

// busyboxApplets asks the busybox this machine can run (its own architecture's, or the other
// through QEMU) which applets it has.
func busyboxApplets(t testing.TB, roots map[string]string) []string {
	t.Helper()
	order := []string{"amd64", "arm64"}
	if runtime.GOARCH == "arm64" {
		order = []string{"arm64", "amd64"}
	}
	var lastErr error
	for _, arch := range order {
		bin := busybox(roots[arch])
		if bin == "" {
			t.Fatalf("testenv: no busybox in the busybox-static %s package", arch)
		}
		out, err := exec.Command(bin, "--list").Output()
		if err != nil {
			lastErr = err
			continue
		}
		var applets []string
		for _, a := range strings.Fields(string(out)) {
			if a != "busybox" && a != "sh" && !strings.Contains(a, "/") && !slices.Contains(applets, a) {
				applets = append(applets, a)
			}
		}
		slices.Sort(applets)
		return applets
	}
	t.Fatalf("testenv: busybox --list: %v", lastErr)
	return nil
}

// baseImage is one platform's image: a single layer and a config.
func baseImage(t testing.TB, root, arch string, applets []string) v1.Image {
	t.Helper()
	bb, err := os.ReadFile(busybox(root))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	layerTar := baseLayer(t, bb, applets)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("testenv: base layer: %v", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatalf("testenv: base image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: base image: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = []string{"PATH=" + BasePath}
	cf.Config.Cmd = []string{"sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testenv: base image: %v", err)
	}
	return img
}

// baseLayer is the uncompressed layer: directories, /bin/busybox, its applet symlinks, and a
// root user.
func baseLayer(t testing.TB, busybox []byte, applets []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	add := func(h *tar.Header, data []byte) {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("testenv: base layer: %v", err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatalf("testenv: base layer: %v", err)
		}
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"root/", 0o700}, {"tmp/", 0o1777}} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, busybox)
	for _, a := range append([]string{"sh"}, applets...) {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte("root:x:0:\n"))
	if err := tw.Close(); err != nil {
		t.Fatalf("testenv: base layer: %v", err)
	}
	return buf.Bytes()
}
