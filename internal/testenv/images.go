package testenv

import (
	"archive/tar"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Attestation is the platform that makes Index add a BuildKit-style attestation manifest
// (platform unknown/unknown, annotated vnd.docker.reference.type=attestation-manifest)
// instead of a platform image.
const Attestation = "unknown/unknown"

// annotationRefName names a tag in an OCI layout's index.json.
const annotationRefName = "org.opencontainers.image.ref.name"

// Image returns a small random OCI image whose config declares platform p ("linux/amd64",
// "linux/arm64/v8").
func Image(t testing.TB, p string) v1.Image {
	t.Helper()
	plat := parsePlatform(t, p)
	layer, err := random.Layer(256, types.OCILayer)
	if err != nil {
		t.Fatalf("testenv: random layer: %v", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatalf("testenv: image %s: %v", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: image %s: %v", p, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testenv: image %s: %v", p, err)
	}
	return img
}

// Index returns an OCI image index with one Image per platform, each entry carrying the
// platform as given (so "linux/arm64/v8" keeps its variant). Attestation adds an attestation
// manifest for the entry before it.
func Index(t testing.TB, platforms ...string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var prev v1.Hash
	for _, p := range platforms {
		img := Image(t, p)
		add := mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: parsePlatform(t, p)}}
		if p == Attestation {
			add.Descriptor.Annotations = map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": prev.String(),
			}
		}
		idx = mutate.AppendManifests(idx, add)
		d, err := img.Digest()
		if err != nil {
			t.Fatalf("testenv: index: %v", err)
		}
		prev = d
	}
	return idx
}

// PushIndex pushes Index(platforms...) to ref and returns the index digest. ref is
// "HOST/REPO:TAG" (a registry) or "oci:DIR/REPO:TAG" (the OCI layout at DIR/REPO).
func PushIndex(t testing.TB, ref string, platforms ...string) v1.Hash {
	t.Helper()
	return Push(t, ref, Index(t, platforms...))
}

// PushImage pushes a single-platform image, a plain manifest with no index, to ref (as in
// PushIndex) and returns its digest.
func PushImage(t testing.TB, ref string, platform string) v1.Hash {
	t.Helper()
	return Push(t, ref, Image(t, platform))
}

// Push writes x, a v1.Image or a v1.ImageIndex, to ref (as in PushIndex), moving the tag if
// it exists, and returns x's digest.
func Push(t testing.TB, ref string, x remote.Taggable) v1.Hash {
	t.Helper()
	var d v1.Hash
	var err error
	switch x := x.(type) {
	case v1.ImageIndex:
		d, err = x.Digest()
	case v1.Image:
		d, err = x.Digest()
	default:
		t.Fatalf("testenv: push %s: %T is neither an image nor an index", ref, x)
	}
	if err != nil {
		t.Fatalf("testenv: push %s: %v", ref, err)
	}
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		err = pushLayout(dir, x)
	} else {
		err = pushRemote(t, ref, x)
	}
	if err != nil {
		t.Fatalf("testenv: push %s: %v", ref, err)
	}
	return d
}

func pushRemote(t testing.TB, ref string, x remote.Taggable) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return err
	}
	switch x := x.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(tag, x, remote.WithContext(t.Context()))
	case v1.Image:
		return remote.Write(tag, x, remote.WithContext(t.Context()))
	}
	return nil
}

// pushLayout writes x into the OCI layout at path (created if needed), tagged with
// org.opencontainers.image.ref.name; an entry that had the tag is replaced.
func pushLayout(ref string, x remote.Taggable) error {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return fmt.Errorf("want oci:DIR/REPO:TAG")
	}
	dir, tag := filepath.Clean(ref[:i]), ref[i+1:]
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	tagged := layout.WithAnnotations(map[string]string{annotationRefName: tag})
	sameTag := match.Annotation(annotationRefName, tag)
	switch x := x.(type) {
	case v1.ImageIndex:
		return p.ReplaceIndex(x, sameTag, tagged)
	case v1.Image:
		return p.ReplaceImage(x, sameTag, tagged)
	}
	return nil
}

func parsePlatform(t testing.TB, p string) *v1.Platform {
	t.Helper()
	f := strings.Split(p, "/")
	if len(f) < 2 || len(f) > 3 {
		t.Fatalf("testenv: platform %q: want os/arch[/variant]", p)
	}
	plat := &v1.Platform{OS: f[0], Architecture: f[1]}
	if len(f) == 3 {
		plat.Variant = f[2]
	}
	return plat
}

// PushUntagged pushes Image(platform) by digest only, as a builder pushing by digest does, to
// repoRef: "HOST/REPO" (a registry repository) or "oci:DIR/REPO" (its blobs and manifest are
// written to the OCI layout at DIR/REPO, and index.json is left alone). It returns the image
// manifest's digest.
func PushUntagged(t testing.TB, repoRef, platform string) v1.Hash {
	t.Helper()
	img := Image(t, platform)
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("testenv: push %s: %v", repoRef, err)
	}
	if dir, ok := strings.CutPrefix(repoRef, "oci:"); ok {
		p, err := layout.FromPath(dir)
		if err != nil {
			p, err = layout.Write(dir, empty.Index)
		}
		if err == nil {
			err = p.WriteImage(img)
		}
		if err != nil {
			t.Fatalf("testenv: push %s: %v", repoRef, err)
		}
		return d
	}
	repo, err := name.NewRepository(repoRef, name.StrictValidation)
	if err != nil {
		t.Fatalf("testenv: push %s: %v", repoRef, err)
	}
	if err := remote.Write(repo.Digest(d.String()), img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("testenv: push %s: %v", repoRef, err)
	}
	return d
}

// Layout opens the OCI image layout at dir and returns its root index (index.json, from which
// Image and ImageIndex read any manifest by digest) and that index's manifest, for tests that
// look inside what a layout target wrote.
func Layout(t testing.TB, dir string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return ii, im
}

// EachEntry calls f with every entry of img's layers, lowest layer first, and a reader of its
// content (read it or not).
func EachEntry(t testing.TB, img v1.Image, f func(h *tar.Header, content io.Reader)) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("testenv: layers: %v", err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatalf("testenv: layer: %v", err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				t.Fatalf("testenv: layer: %v", err)
			}
			f(h, tr)
		}
		rc.Close()
	}
}
