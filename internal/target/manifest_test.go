package target

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testdataBlobs serves testdata/config-*.json by digest, as a registry or layout would.
func testdataBlobs(t *testing.T) (fetchFunc, *int) {
	t.Helper()
	paths, err := filepath.Glob("testdata/config-*.json")
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[v1.Hash][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d, _, _ := v1.SHA256(bytes.NewReader(b))
		blobs[d] = b
	}
	var calls int
	return func(_ context.Context, d v1.Hash) ([]byte, error) {
		calls++
		b, ok := blobs[d]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return b, nil
	}, &calls
}

const (
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	dockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		file        string
		header      string // the media type the target announced
		platforms   []string
		mediaType   string
		annotations map[string]string
		configReads int
		err         string
	}{
		{file: "oci-index-complete.json", platforms: []string{"linux/amd64", "linux/arm64"}, mediaType: ociIndex,
			annotations: map[string]string{
				"org.opencontainers.image.version": "1.2.0",
				"org.opencontainers.image.source":  "https://github.com/outline/outline",
			}},
		{file: "oci-index-incomplete.json", platforms: []string{"linux/amd64"}, mediaType: ociIndex},
		// unknown/unknown with the annotation, unknown/unknown alone, the annotation alone:
		// none of them is a platform.
		{file: "oci-index-attestations.json", platforms: []string{"linux/amd64", "linux/arm64"}, mediaType: ociIndex},
		// arm64/v8 and arm64 are one platform; an entry without a platform and an unknown
		// architecture are skipped.
		{file: "docker-manifest-list.json", platforms: []string{"linux/amd64", "linux/arm/v7", "linux/arm64"}, mediaType: dockerList},
		// mediaType is optional in OCI: the Content-Type says it, or the fields do.
		{file: "oci-index-no-media-type.json", header: ociIndex + "; charset=utf-8", platforms: []string{"linux/amd64", "linux/arm64"}, mediaType: ociIndex},
		{file: "oci-index-no-media-type.json", platforms: []string{"linux/amd64", "linux/arm64"}, mediaType: ociIndex},
		{file: "oci-manifest-arm64-v8.json", header: ociManifest, platforms: []string{"linux/arm64"}, mediaType: ociManifest, configReads: 1,
			annotations: map[string]string{"org.opencontainers.image.created": "2025-01-01T00:00:00Z"}},
		{file: "docker-manifest-amd64.json", platforms: []string{"linux/amd64"}, mediaType: dockerV2, configReads: 1},
		{file: "oci-manifest-no-platform.json", mediaType: ociManifest, configReads: 1},
		{file: "oci-manifest-missing-config.json", configReads: 1, err: "config sha256:"},
		{file: "oci-artifact.json", err: `not an image (config media type "application/vnd.cncf.helm.config.v1+json")`},
		{file: "docker-schema1.json", err: `unsupported media type "application/vnd.docker.distribution.manifest.v1+prettyjws"`},
		{file: "not-json.json", err: "invalid character"},
	}
	log := slog.New(slog.DiscardHandler)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			d, _, _ := v1.SHA256(bytes.NewReader(raw))
			blobs, calls := testdataBlobs(t)
			st, err := describe(t.Context(), log, d, tt.header, raw, blobs)
			if *calls != tt.configReads {
				t.Errorf("config reads = %d, want %d", *calls, tt.configReads)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), "manifest "+d.String()) {
					t.Errorf("err = %v, want it to name the manifest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := State{Exists: true, Digest: d.String(), MediaType: tt.mediaType, Platforms: tt.platforms, Annotations: tt.annotations, Manifest: raw}
			for _, p := range st.Platforms {
				if e := st.Digests[p]; e != d.String() && !strings.Contains(string(raw), `"`+e+`"`) {
					t.Errorf("Digests[%s] = %q: not an entry of %s", p, e, raw)
				}
			}
			if len(st.Digests) != len(st.Platforms) {
				t.Errorf("Digests %v for platforms %v", st.Digests, st.Platforms)
			}
			st.Digests = nil
			if !reflect.DeepEqual(st, want) {
				t.Errorf("State = %+v\nwant    %+v", st, want)
			}
		})
	}
}

// imageDescriptor is an index entry for a single image: platform from its config, arm64
// without variant.
func TestImageDescriptor(t *testing.T) {
	tests := []struct {
		file, header string
		mediaType    string
		platform     string
		err          string
	}{
		{file: "oci-manifest-arm64-v8.json", mediaType: ociManifest, platform: "linux/arm64"},
		{file: "docker-manifest-amd64.json", mediaType: dockerV2, platform: "linux/amd64"},
		{file: "oci-manifest-no-platform.json", err: "declares no platform"},
		{file: "oci-index-complete.json", err: "an index, not a single-platform image"},
		{file: "docker-manifest-list.json", err: "an index, not a single-platform image"},
		{file: "oci-artifact.json", err: "not an image"},
		{file: "docker-schema1.json", err: "unsupported media type"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			d, _, _ := v1.SHA256(bytes.NewReader(raw))
			blobs, _ := testdataBlobs(t)
			desc, err := imageDescriptor(t.Context(), d, tt.header, raw, blobs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(desc.MediaType) != tt.mediaType || desc.Digest != d || desc.Size != int64(len(raw)) ||
				desc.Platform == nil || desc.Platform.String() != tt.platform || desc.Platform.Variant != "" {
				t.Errorf("descriptor = %+v (platform %v)", desc, desc.Platform)
			}
		})
	}
}

func TestDescribeCopiesAnnotations(t *testing.T) {
	raw, err := os.ReadFile("testdata/oci-index-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	a, err := describe(t.Context(), slog.New(slog.DiscardHandler), d, "", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Annotations["org.opencontainers.image.version"] = "changed"
	b, _ := describe(t.Context(), slog.New(slog.DiscardHandler), d, "", raw, nil)
	if b.Annotations["org.opencontainers.image.version"] != "1.2.0" {
		t.Error("annotations are shared between States")
	}
}

func TestCheckRef(t *testing.T) {
	for _, repo := range []string{"outline", "outline-base", "a.b_c__d--e", "x9"} {
		if err := checkRef(repo, "1.2.0"); err != nil {
			t.Errorf("checkRef(%q): %v", repo, err)
		}
	}
	for _, repo := range []string{"", "..", ".", "../x", "a/b", "/abs", "Outline", "-x", "x-", "a b", `a\b`} {
		if err := checkRef(repo, "1.2.0"); err == nil {
			t.Errorf("checkRef(%q) accepted it", repo)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a/b", "a:b", strings.Repeat("x", 129), "../x"} {
		if err := checkRef("app", tag); err == nil {
			t.Errorf("checkRef(tag %q) accepted it", tag)
		}
	}
	if err := checkRef("app", "v1.2.0_rc-1"); err != nil {
		t.Error(err)
	}
}

func TestStore(t *testing.T) {
	s := &store{dir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	b := []byte(`{"schemaVersion":2}`)
	d, _, _ := v1.SHA256(bytes.NewReader(b))
	if _, ok := s.get(d); ok {
		t.Fatal("hit in an empty cache")
	}
	s.put(d, b)
	got, ok := s.get(d)
	if !ok || !bytes.Equal(got, b) {
		t.Fatalf("get = %q, %v", got, ok)
	}
	if p := s.path(d); p != filepath.Join(s.dir, "blobs", "sha256", d.Hex) {
		t.Errorf("path = %s", p)
	}

	// Content that is not what its name says is never written...
	other, _, _ := v1.SHA256(strings.NewReader("other"))
	if err := s.write(other, b); err == nil {
		t.Error("write accepted content under the wrong digest")
	}
	if _, err := os.Stat(s.path(other)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("wrong content was written: %v", err)
	}
	// ...and a corrupt file is a miss, and is removed.
	if err := os.WriteFile(s.path(d), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.get(d); ok {
		t.Error("corrupt entry was a hit")
	}
	if _, err := os.Stat(s.path(d)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt entry not removed: %v", err)
	}
	// No temporary files are left behind.
	left, _ := filepath.Glob(filepath.Join(s.dir, "blobs", "sha256", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
