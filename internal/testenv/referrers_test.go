package testenv

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestReferrersRegistry(t *testing.T) {
	host := ReferrersRegistry(t)
	d := PushImage(t, host+"/mirror/app:1.0.0", "linux/amd64")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/v2/mirror/app/referrers/"+d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var im v1.IndexManifest
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != string(types.OCIImageIndex) ||
		json.NewDecoder(resp.Body).Decode(&im) != nil || im.Manifests == nil || len(im.Manifests) != 0 {
		t.Errorf("referrers API: %s %s %+v", resp.Status, resp.Header.Get("Content-Type"), im)
	}
}

func TestNewReferrer(t *testing.T) {
	sub := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 500,
		Digest: v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
	r := NewReferrer(t, sub, "https://slsa.dev/provenance/v1")
	if again := NewReferrer(t, sub, "https://slsa.dev/provenance/v1"); again.Digest != r.Digest {
		t.Errorf("not deterministic: %s, then %s", r.Digest, again.Digest)
	}
	if other := NewReferrer(t, sub, "https://example.com/other"); other.Digest == r.Digest {
		t.Error("another predicate type gives the same referrer")
	}
	m, err := v1.ParseManifest(bytes.NewReader(r.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := v1.SHA256(bytes.NewReader(r.Manifest)); d != r.Digest {
		t.Errorf("Digest %s, manifest is %s", r.Digest, d)
	}
	if m.ArtifactType != SigstoreBundle || m.Config.MediaType != EmptyConfig || m.Config.Size != 2 ||
		m.Subject == nil || m.Subject.Digest != sub.Digest || len(m.Layers) != 1 || m.Layers[0].MediaType != SigstoreBundle ||
		m.Annotations[AnnotationPredicateType] != "https://slsa.dev/provenance/v1" {
		t.Errorf("manifest = %s", r.Manifest)
	}
	for i, want := range []v1.Descriptor{m.Config, m.Layers[0]} {
		if d, size, _ := v1.SHA256(bytes.NewReader(r.Blobs[i])); d != want.Digest || size != want.Size {
			t.Errorf("blob %d is %s (%d bytes), the manifest says %s (%d)", i, d, size, want.Digest, want.Size)
		}
	}
}
