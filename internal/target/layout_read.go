package target

// Reads from an OCI layout: images, manifests, blobs and descriptors by digest from blobs/,
// each checked against its digest, and index.json. Reads take no lock: index.json is replaced
// whole (layout_write.go), never written in place.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/bounded"
)

// Image reads the manifest d and its config from the layout's blobs; layers are opened when
// read, and checked against their digests as they are.
func (l *layoutTarget) Image(ctx context.Context, repo string, d v1.Hash) (v1.Image, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + "@" + d.String()
	if err := checkBlobRef(repo, d); err != nil {
		return nil, fmt.Errorf("image %s: %w", where, err)
	}
	read := blobReader(dir)
	raw, err := read(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", where, err)
	}
	open := func(desc v1.Descriptor) (io.ReadCloser, error) {
		rc, err := layout.Path(dir).Blob(desc.Digest)
		if errors.Is(err, fs.ErrNotExist) {
			err = errors.New("not in the layout")
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: blob %s: %w", where, desc.Digest, err)
		}
		return newVerifying(rc, desc)
	}
	img, err := newImage(ctx, d, raw, read, open)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", where, err)
	}
	return img, nil
}

// Manifest reads the manifest d from the layout's blobs.
func (l *layoutTarget) Manifest(ctx context.Context, repo string, d v1.Hash) ([]byte, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + "@" + d.String()
	if err := checkBlobRef(repo, d); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", where, err)
	}
	b, err := l.blob(dir, d, maxManifestSize)
	if err == nil {
		_, err = manifestMediaType(b, "")
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", where, err)
	}
	return b, nil
}

// Blob reads the blob d from the layout, refusing it without reading it when it is larger
// than max.
func (l *layoutTarget) Blob(ctx context.Context, repo string, d v1.Hash, max int64) ([]byte, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + "@" + d.String()
	if err := checkBlobRef(repo, d); err != nil {
		return nil, fmt.Errorf("blob %s: %w", where, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob %s: %w", where, err)
	}
	b, err := l.blob(dir, d, max)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", where, err)
	}
	return b, nil
}

func (l *layoutTarget) blob(dir string, d v1.Hash, max int64) ([]byte, error) {
	f, err := layout.Path(dir).Blob(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("not in the layout")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Size() > max {
			return nil, fmt.Errorf("%d bytes, larger than %d", fi.Size(), max)
		}
	}
	b, err := bounded.Read(f, max, "")
	if err != nil {
		return nil, err
	}
	if err := verify(d, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Describe reads the manifest d and its config from the layout's blobs.
func (l *layoutTarget) Describe(ctx context.Context, repo string, d v1.Hash) (v1.Descriptor, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + "@" + d.String()
	if err := checkRepo(repo); err != nil {
		return v1.Descriptor{}, fmt.Errorf("describe %s: %w", where, err)
	}
	read := blobReader(dir)
	raw, err := read(ctx, d)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("describe %s: manifest: %w", where, err)
	}
	desc, err := imageDescriptor(ctx, d, "", raw, read)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("describe %s: %w", where, err)
	}
	return desc, nil
}

// readIndexJSON reads dir/index.json; a layout without one (only blobs so far) has an empty
// index.
func readIndexJSON(dir string) (*v1.IndexManifest, error) {
	ii, err := layout.Path(dir).ImageIndex()
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return im.DeepCopy(), nil
}

// blobReader reads blobs of the layout at dir, verified against their digests.
func blobReader(dir string) fetchFunc {
	return func(_ context.Context, d v1.Hash) ([]byte, error) {
		b, err := layout.Path(dir).Bytes(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("not in the layout")
		}
		if err != nil {
			return nil, err
		}
		if err := verify(d, b); err != nil {
			return nil, err
		}
		return b, nil
	}
}
