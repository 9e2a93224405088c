// Package target reads and writes the place mirrors are published to: a registry namespace or
// an OCI layout directory, behind one interface.
//
// New picks the implementation from the form of config.Target.Registry: "oci:./dir" is an OCI
// layout directory (one image layout per repo, at dir/<repo>), anything else is a registry
// namespace ("ghcr.io/acme/mirror"). Both turn what a tag points at into a State with the same
// code, so the embedded default and a real registry answer the same way.
//
// Publishing writes only ever add a manifest (an index whose children are already in the repo)
// and move tags, each guarded by the digest the caller expects the tag to point at now: no blob
// is uploaded, and a tag that changed since the caller read it is left alone (ErrConflict).
//
// Attestation reads images back (Image, Manifest, Blob) and attaches signatures and
// attestations to them as OCI 1.1 referrers (Attach, Referrers): an artifact manifest whose
// subject is the image, with its blobs. A registry with the referrers API lists them itself;
// on one without it the target keeps the referrers tag schema's fallback index
// (registry_referrers.go); a layout lists them as untagged index.json entries
// (layout_referrers.go).
package target

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/build"
)

// State is what the target holds under one repo:tag.
type State struct {
	Exists      bool
	Digest      string            // of the manifest or index the tag points at
	MediaType   string            // of that manifest
	Platforms   []string          // "linux/amd64", normalised (arm64 without variant), sorted
	Digests     map[string]string // each platform's manifest digest (an index's entry, or the manifest itself)
	Annotations map[string]string // the index's (or manifest's) annotations
	Manifest    []byte            // the manifest itself, verified against Digest
}

// Target is a registry namespace or an OCI layout directory. repo is relative to the target's
// root: the component name ("outline-base").
type Target interface {
	// Inspect reports what repo:tag points at. A missing repo or tag is State{Exists: false}
	// and no error; an error means the target could not answer.
	Inspect(ctx context.Context, repo, tag string) (State, error)

	// Ref is where repo's images live: "host/ns/repo" for a registry (what a builder pushes
	// to, and what "host/ns/repo@sha256:…" references), the layout directory for "oci:".
	Ref(repo string) string
	// Insecure reports whether a builder may talk plain HTTP (or unverified TLS) to Ref: the
	// config says insecure, or the registry is on loopback. Always false for a layout.
	Insecure() bool
	// Output is how a builder stores repo's images in the target: pushed by digest to Ref, or
	// added to the layout at Ref.
	Output(repo string) build.Output
	// Name names repo in reports: Ref, with "oci:" before a layout's directory.
	Name(repo string) string
	// Location is where repo lives, for provenance: the registry host and the repository path
	// below it ("ghcr.io", "acme/mirror/app"), or "oci:DIR" and repo for a layout.
	Location(repo string) (registry, repository string)

	// Describe returns the descriptor of the image manifest d in repo, for an index entry:
	// its media type, size and digest, and the platform its image config declares,
	// normalised (arm64 without variant). d must be a single-platform image, not an index.
	Describe(ctx context.Context, repo string, d v1.Hash) (v1.Descriptor, error)

	// WriteIndex stores idx in repo and points tag at it, if tag points at the digest expect
	// now ("" meaning tag must not exist); otherwise it returns a *ConflictError and writes
	// nothing. A tag that already points at idx's digest is success. Every manifest idx
	// lists must already be in repo: only the index itself is written. It returns idx's
	// descriptor.
	WriteIndex(ctx context.Context, repo, tag string, idx *v1.IndexManifest, expect string) (v1.Descriptor, error)

	// Tag points tag at the manifest d, already in repo, under the same guard as WriteIndex.
	Tag(ctx context.Context, repo, tag string, d v1.Hash, expect string) error

	// Image returns the single-platform image d in repo, to read its config and layers (the
	// SBOM cataloguer streams its filesystem). Its manifest and config are read now; layers
	// are fetched lazily, under ctx, which must last as long as the image is read.
	Image(ctx context.Context, repo string, d v1.Hash) (v1.Image, error)

	// Manifest returns the raw manifest d in repo (cached by digest like the others),
	// verified against d.
	Manifest(ctx context.Context, repo string, d v1.Hash) ([]byte, error)

	// Blob returns the blob d in repo, at most max bytes (an error if larger), verified
	// against d.
	Blob(ctx context.Context, repo string, d v1.Hash, max int64) ([]byte, error)

	// Referrers lists the descriptors of the manifests in repo whose subject is d, as the
	// referrers API returns them (mediaType, digest, size, artifactType, annotations), sorted
	// by digest: the registry's referrers API when it has one, else the tag-schema fallback
	// index; for a layout, the referrers recorded in its index.json. No referrers (or no
	// repo) is an empty list, not an error.
	Referrers(ctx context.Context, repo string, d v1.Hash) ([]v1.Descriptor, error)

	// Attach stores artifacts (each an OCI image manifest whose Subject is set, and its blobs:
	// config and layers, by content; a blob the repo already has is not uploaded again; one the
	// manifest does not reference is an error) in repo, and makes each a referrer of its
	// subject, which must already be in repo. It returns, in order, the descriptor the
	// referrers listing shows for each (artifactType from the manifest's artifactType or else
	// its config mediaType, and the manifest's annotations). Attaching a manifest that is
	// already a referrer writes nothing but is success (idempotent), and attaching one whose
	// fallback-index entry another writer lost adds the entry again. The artifacts of one
	// subject go into its fallback index in one update.
	Attach(ctx context.Context, repo string, arts ...Artifact) ([]v1.Descriptor, error)
}

// Artifact is a referrer to attach: its manifest and the blobs to upload with it.
type Artifact struct {
	Manifest []byte   // an OCI image manifest with a subject
	Blobs    [][]byte // content of its config and layers the repo may lack
}

// ErrConflict is what a guarded write's error matches (errors.Is) when its tag did not point
// where the caller expected.
var ErrConflict = errors.New("tag changed")

// ConflictError is a guarded write refused: Tag points at Actual, not at Expected ("" meaning
// absent).
type ConflictError struct {
	Tag              string
	Expected, Actual string
}

func (e *ConflictError) Error() string {
	what := func(d string) string {
		if d == "" {
			return "nothing"
		}
		return d
	}
	return fmt.Sprintf("tag %s changed: it points at %s, expected %s", e.Tag, what(e.Actual), what(e.Expected))
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
