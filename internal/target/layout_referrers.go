package target

// Referrers in an OCI layout. A layout has no referrers API and no tags to spare: a referrer
// is an index.json entry without an org.opencontainers.image.ref.name annotation (so it is
// not a tag), carrying what a referrers listing shows (mediaType, digest, size, artifactType,
// annotations), over the manifest in blobs/. That is what cosign's local-layout reader
// (cosign verify --local-image) and oras expect: they scan index.json's entries and read each
// manifest's subject. Referrers does the same. Attach adds the entry under the layout's lock,
// as tags are moved (layout_write.go).

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Referrers reads index.json and the manifests of its untagged entries, and lists those
// whose subject is d.
func (l *layoutTarget) Referrers(ctx context.Context, repo string, d v1.Hash) ([]v1.Descriptor, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + "@" + d.String()
	if err := checkBlobRef(repo, d); err != nil {
		return nil, fmt.Errorf("referrers %s: %w", where, err)
	}
	im, err := readIndexJSON(dir) // none, or no layout: an empty index
	if err != nil {
		return nil, fmt.Errorf("referrers %s: %w", where, err)
	}
	descs, err := layoutReferrers(ctx, dir, im, d)
	if err != nil {
		return nil, fmt.Errorf("referrers %s: %w", where, err)
	}
	return descs, nil
}

// layoutReferrers lists the untagged entries of im whose manifest's subject is d. A tagged
// entry is an image, not a referrer, and is not read.
func layoutReferrers(ctx context.Context, dir string, im *v1.IndexManifest, d v1.Hash) ([]v1.Descriptor, error) {
	read := blobReader(dir)
	seen := map[v1.Hash]bool{}
	out := []v1.Descriptor{}
	for _, e := range im.Manifests {
		if _, tagged := e.Annotations[annotationRefName]; tagged || seen[e.Digest] {
			continue
		}
		if e.MediaType != types.OCIManifestSchema1 && e.MediaType != types.OCIImageIndex {
			continue // only OCI manifests have a subject
		}
		seen[e.Digest] = true
		raw, err := read(ctx, e.Digest)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %s: %w", e.Digest, err)
		}
		desc, subject, err := referrerDescriptor(raw)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %s: %w", e.Digest, err)
		}
		if subject != nil && subject.Digest == d {
			out = append(out, desc)
		}
	}
	return sortReferrers(out), nil
}

// Attach writes the blobs and the manifests into the layout and adds the manifests' entries to
// index.json, under the layout's lock.
func (l *layoutTarget) Attach(ctx context.Context, repo string, arts ...Artifact) ([]v1.Descriptor, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir
	if err := checkRepo(repo); err != nil {
		return nil, fmt.Errorf("attach %s: %w", where, err)
	}
	as, err := parseArtifacts(arts)
	if err != nil {
		return nil, fmt.Errorf("attach %s%w", where, err)
	}
	for _, a := range as {
		if err := l.attach(ctx, dir, a); err != nil {
			return nil, fmt.Errorf("attach %s@%s: %w", where, a.desc.Digest, err)
		}
	}
	return descriptors(as), nil
}

func (l *layoutTarget) attach(ctx context.Context, dir string, a *artifact) error {
	im, unlock, err := lockIndex(ctx, dir, fmt.Errorf("subject %s: no layout at %s (a referrer is attached to an image already written)", a.subject, dir))
	if err != nil {
		return err
	}
	defer unlock()
	for _, e := range im.Manifests {
		if _, tagged := e.Annotations[annotationRefName]; !tagged && e.Digest == a.desc.Digest {
			l.log.Debug("already a referrer", "layout", dir, "subject", a.subject.String(), "digest", a.desc.Digest.String())
			return nil
		}
	}
	read := blobReader(dir)
	if _, err := read(ctx, a.subject); err != nil {
		return fmt.Errorf("subject %s: %w (a referrer is attached to an image already written)", a.subject, err)
	}
	for _, ref := range a.refs {
		content, given := a.given[ref.Digest]
		if given {
			err = writeBlob(dir, ref.Digest, content)
		} else if _, err = read(ctx, ref.Digest); err != nil {
			err = fmt.Errorf("%w, and not given", err)
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", ref.Digest, err)
		}
	}
	if err := writeBlob(dir, a.desc.Digest, a.raw); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	im.Manifests = append(im.Manifests, a.desc)
	if err := writeIndexJSON(dir, im); err != nil {
		return err
	}
	l.log.Debug("attached", "layout", dir, "subject", a.subject.String(), "digest", a.desc.Digest.String())
	return nil
}
