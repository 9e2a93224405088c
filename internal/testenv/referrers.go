package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ReferrersRegistry starts go-containerregistry's registry (pkg/registry) with the OCI 1.1
// referrers API, which Registry's docker-registry lacks, on a loopback port, and stops it when
// the test ends. Blobs are kept in a temporary directory, manifests in memory. It returns the
// host ("127.0.0.1:PORT"), spoken to over plain HTTP. It needs nothing installed.
//
// Its listing takes a referrer's artifactType from the config's media type only, not from the
// manifest's artifactType as the spec says.
func ReferrersRegistry(t testing.TB) string {
	t.Helper()
	h := registry.New(
		registry.WithReferrersSupport(true),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(t.TempDir())),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Media types of a Sigstore bundle attached as cosign v3 does: an OCI artifact manifest whose
// config is the empty descriptor.
const (
	SigstoreBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	EmptyConfig    = "application/vnd.oci.empty.v1+json"
	// AnnotationPredicateType is the annotation cosign puts on an attestation's manifest.
	AnnotationPredicateType = "dev.sigstore.bundle.predicateType"
)

// Referrer is an artifact manifest to attach, and its blobs.
type Referrer struct {
	Manifest []byte
	Digest   v1.Hash
	Blobs    [][]byte // the empty config ({}) and the bundle layer
}

// NewReferrer returns a Sigstore-bundle-shaped referrer of subject (an image manifest's
// descriptor: media type, digest, size): artifactType SigstoreBundle, the empty config, one
// layer of that type and the annotation {AnnotationPredicateType: predicateType}. The bundle
// is a stand-in, not a signature; it is the same for the same subject and predicateType, so
// different predicate types make different referrers.
func NewReferrer(t testing.TB, subject v1.Descriptor, predicateType string) Referrer {
	t.Helper()
	config := []byte("{}")
	bundle := []byte(fmt.Sprintf(`{"mediaType":%q,"subject":%q,"predicateType":%q}`, SigstoreBundle, subject.Digest, predicateType))
	desc := func(mt string, b []byte) v1.Descriptor {
		d, size, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("testenv: referrer: %v", err)
		}
		return v1.Descriptor{MediaType: types.MediaType(mt), Digest: d, Size: size}
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  SigstoreBundle,
		Config:        desc(EmptyConfig, config),
		Layers:        []v1.Descriptor{desc(SigstoreBundle, bundle)},
		Subject:       &sub,
		Annotations:   map[string]string{AnnotationPredicateType: predicateType},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("testenv: referrer: %v", err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("testenv: referrer: %v", err)
	}
	return Referrer{Manifest: raw, Digest: d, Blobs: [][]byte{config, bundle}}
}
