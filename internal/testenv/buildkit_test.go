package testenv

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/client"
)

func TestBuildkitdConfig(t *testing.T) {
	got := buildkitdConfig([]string{"127.0.0.1:5000", "127.0.0.1:5001"})
	for _, want := range []string{
		"[worker.oci]\n  enabled = true\n",
		`networkMode = "host"`,
		"[worker.containerd]\n  enabled = false\n",
		"[registry.\"127.0.0.1:5000\"]\n  http = true\n",
		"[registry.\"127.0.0.1:5001\"]\n  http = true\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}

func TestBuildKit(t *testing.T) {
	addr := BuildKit(t, "127.0.0.1:5000")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatalf("ready, but ListWorkers: %v", err)
	}
	var platforms []string
	for _, w := range workers {
		for _, p := range w.Platforms {
			platforms = append(platforms, p.OS+"/"+p.Architecture)
		}
	}
	t.Logf("buildkitd at %s: %d worker(s), platforms %v", addr, len(workers), platforms)
	if !slices.Contains(platforms, "linux/amd64") {
		t.Errorf("platforms %v lack linux/amd64", platforms)
	}
}

func TestBaseImage(t *testing.T) {
	reg := Registry(t)
	ref, index, amd64 := BaseImage(t, reg)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != index || desc.MediaType != types.OCIImageIndex {
		t.Fatalf("%s is %s %s, want index %s", ref, desc.MediaType, desc.Digest, index)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range im.Manifests {
		got = append(got, m.Platform.String())
		if m.Platform.Architecture == "amd64" && m.Digest != amd64 {
			t.Errorf("amd64 entry %s, BaseImage said %s", m.Digest, amd64)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkBase(t, img, m.Platform.Architecture)
	}
	if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", got)
	}

	// the same bytes every time
	_, again, _ := BaseImage(t, reg)
	if again != index {
		t.Errorf("second BaseImage: %s, first %s", again, index)
	}
}

func checkBase(t *testing.T, img v1.Image, arch string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != arch || !slices.Contains(cf.Config.Env, "PATH="+BasePath) {
		t.Errorf("%s config: %s/%s env %v", arch, cf.OS, cf.Architecture, cf.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%s: %d layers, %v", arch, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	links := map[string]string{}
	var elf []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			links[h.Name] = h.Linkname
		case tar.TypeReg:
			if h.Name == "bin/busybox" {
				elf = make([]byte, 20)
				if _, err := io.ReadFull(tr, elf); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range []string{"bin/sh", "bin/wget", "bin/tar", "bin/grep"} {
		if links[a] != "busybox" {
			t.Errorf("%s: %s -> %q, want busybox", arch, a, links[a])
		}
	}
	// e_machine: 62 x86-64, 183 AArch64
	machine := map[string]byte{"amd64": 62, "arm64": 183}[arch]
	if len(elf) < 20 || string(elf[:4]) != "\x7fELF" || elf[18] != machine {
		t.Errorf("%s: bin/busybox is not an %s ELF: % x", arch, arch, elf)
	}
}
