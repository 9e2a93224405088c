package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestRegistry(t *testing.T) {
	host := Registry(t)
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}

	d := PushIndex(t, host+"/mirror/app:1.2.0", "linux/amd64", "linux/arm64/v8", Attestation)
	ref, err := name.ParseReference(host + "/mirror/app:1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d || desc.MediaType != types.OCIImageIndex {
		t.Errorf("pushed %s, registry has %s %s", d, desc.MediaType, desc.Digest)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	checkIndex(t, idx)

	img := PushImage(t, host+"/mirror/plain:1.0.0", "linux/arm64/v8")
	pref, _ := name.ParseReference(host + "/mirror/plain:1.0.0")
	pdesc, err := remote.Get(pref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if pdesc.Digest != img || pdesc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("plain image: %s %s, want %s", pdesc.MediaType, pdesc.Digest, img)
	}
	i, err := pdesc.Image()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := i.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("config platform = %s/%s/%s", cf.OS, cf.Architecture, cf.Variant)
	}
}

// checkIndex checks the shape Index(linux/amd64, linux/arm64/v8, Attestation) must have.
func checkIndex(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range im.Manifests {
		got = append(got, m.Platform.String())
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if p := (v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}); p.String() != m.Platform.String() {
			t.Errorf("entry says %s, config says %s", m.Platform, p.String())
		}
	}
	if want := []string{"linux/amd64", "linux/arm64/v8", "unknown/unknown"}; !slices.Equal(got, want) {
		t.Errorf("platforms = %v, want %v", got, want)
	}
	att := im.Manifests[2].Annotations
	if att["vnd.docker.reference.type"] != "attestation-manifest" || att["vnd.docker.reference.digest"] != im.Manifests[1].Digest.String() {
		t.Errorf("attestation annotations = %v", att)
	}
}

func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	first := PushIndex(t, "oci:"+dir+":1.2.0", "linux/amd64")
	other := PushImage(t, "oci:"+dir+":1.1.0", "linux/amd64")
	moved := PushIndex(t, "oci:"+dir+":1.2.0", "linux/amd64", "linux/arm64/v8", Attestation)
	if first == moved {
		t.Fatal("two random indexes have one digest")
	}
	p, im := Layout(t, dir)
	tags := map[string]v1.Hash{}
	for _, m := range im.Manifests {
		tag := m.Annotations[annotationRefName]
		if _, dup := tags[tag]; dup {
			t.Errorf("tag %s twice in index.json", tag)
		}
		tags[tag] = m.Digest
	}
	if tags["1.2.0"] != moved || tags["1.1.0"] != other || len(tags) != 2 {
		t.Errorf("index.json tags = %v", tags)
	}
	idx, err := p.ImageIndex(moved)
	if err != nil {
		t.Fatal(err)
	}
	checkIndex(t, idx)
}

// fakeTB records what Missing does instead of ending the test.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestMissing(t *testing.T) {
	t.Setenv(E2EEnv, "")
	f := &fakeTB{}
	Missing(f, "docker-registry is not installed")
	if f.skip == "" || f.fatal != "" {
		t.Errorf("without %s: skip=%q fatal=%q", E2EEnv, f.skip, f.fatal)
	}
	t.Setenv(E2EEnv, "1")
	f = &fakeTB{}
	Missing(f, "docker-registry is not installed")
	if f.fatal == "" || f.skip != "" {
		t.Errorf("with %s=1: skip=%q fatal=%q", E2EEnv, f.skip, f.fatal)
	}
}

func TestPushUntagged(t *testing.T) {
	host := Registry(t)
	c := &Counter{}
	d := PushUntagged(t, host+"/mirror/app", "linux/arm64/v8")
	ref, err := name.ParseReference(host + "/mirror/app@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithTransport(c), remote.WithContext(t.Context()))
	if err != nil || desc.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("by digest: %v, %v", desc, err)
	}
	if got := c.Requests(); c.Count() != int64(len(got)) || got[len(got)-1] != "GET /v2/mirror/app/manifests/"+d.String() || c.Writes() != 0 {
		t.Errorf("Counter: %d, %d writes, %q", c.Count(), c.Writes(), got)
	}
	// distribution answers NAME_UNKNOWN for a repository without tags.
	tags, err := remote.List(ref.Context(), remote.WithContext(t.Context()))
	if len(tags) != 0 || (err != nil && !strings.Contains(err.Error(), "NAME_UNKNOWN")) {
		t.Errorf("tags = %v, %v", tags, err)
	}

	dir := filepath.Join(t.TempDir(), "app")
	ld := PushUntagged(t, "oci:"+dir, "linux/amd64")
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Bytes(ld) // a blob, not an index.json entry
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.Bytes(m.Config.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if cf, err := v1.ParseConfigFile(bytes.NewReader(cfg)); err != nil || cf.Architecture != "amd64" {
		t.Errorf("layout image config: %+v, %v", cf, err)
	}
	ii, _ := p.ImageIndex()
	if im, err := ii.IndexManifest(); err != nil || len(im.Manifests) != 0 {
		t.Errorf("index.json gained entries: %+v, %v", im, err)
	}
}
