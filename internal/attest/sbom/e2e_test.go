package sbom

import (
	"bytes"
	"errors"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/testenv"
)

// The fixture base image plus the hello program: the SBOM lists the base's busybox-static
// and the program's Go module.
func TestFixtureImage(t *testing.T) {
	idx, _, err := fixture.BaseIndex()
	if errors.Is(err, fixture.ErrMissing) {
		testenv.Missing(t, err.Error())
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	progs, err := fixture.Programs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		arch := m.Platform.Architecture
		t.Run(arch, func(t *testing.T) {
			base, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			img := appendLayer(t, base, []file{{name: "opt/hello/bin/hello", mode: 0o755, body: progs[arch]}})
			pkgs, err := New(WithTempDir(t.TempDir())).Catalogue(t.Context(), img)
			if err != nil {
				t.Fatal(err)
			}
			var busybox, hello bool
			for _, p := range pkgs {
				switch {
				case p.Kind == Deb && p.Name == "busybox-static":
					busybox = p.Arch == arch && p.Location == "/var/lib/dpkg/status" && p.Version != ""
				case p.Kind == GoMod && p.Main && p.Name == "github.com/archmirror/archmirror":
					hello = p.Location == "/opt/hello/bin/hello"
				}
			}
			if !busybox || !hello {
				t.Fatalf("busybox-static found %v, hello's module found %v, in %+v", busybox, hello, pkgs)
			}
			digest, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Document("registry.example/fixture/hello", digest, "linux/"+arch, pkgs, fixture.Epoch, "archmirror-test")
			if err != nil {
				t.Fatal(err)
			}
			b, err := JSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			back, err := spdxjson.Read(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, p := range pkgs {
				want[p.PURL()] = true
			}
			for _, p := range back.Packages {
				delete(want, p.PackageExternalReferences[0].Locator)
			}
			if len(want) > 0 {
				t.Errorf("SPDX JSON lacks %v", want)
			}
			if os.Getenv("SBOM_DUMP") != "" {
				t.Logf("%s", b)
			}
		})
	}
}

func appendLayer(t *testing.T, base v1.Image, files []file) v1.Image {
	t.Helper()
	l, err := image(t, files).Layers()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
