package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// annotationRefName names a tag in an OCI layout's index.json.
const annotationRefName = "org.opencontainers.image.ref.name"

// layoutTarget is a Target on disk: repo "app" is the OCI image layout at root/app, and a tag
// is an index.json entry annotated org.opencontainers.image.ref.name=<tag>.
type layoutTarget struct {
	root string
	log  *slog.Logger
}

// Inspect reads root/repo/index.json and describes the entry tagged tag.
func (l *layoutTarget) Inspect(ctx context.Context, repo, tag string) (State, error) {
	where := "oci:" + filepath.Join(l.root, repo) + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", where, err)
	}
	st, err := l.inspect(ctx, filepath.Join(l.root, repo), tag)
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", where, err)
	}
	return st, nil
}

func (l *layoutTarget) inspect(ctx context.Context, dir, tag string) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, err
	}
	p, err := layout.FromPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return State{}, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return State{}, fmt.Errorf("index.json: %w", err)
	}
	// The last entry wins: appending a new descriptor for a tag is how tools move it.
	var desc *v1.Descriptor
	for i := range im.Manifests {
		if im.Manifests[i].Annotations[annotationRefName] == tag {
			desc = &im.Manifests[i]
		}
	}
	if desc == nil {
		return State{}, nil
	}
	read := blobReader(dir)
	raw, err := read(ctx, desc.Digest)
	if err != nil {
		return State{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return describe(ctx, l.log, desc.Digest, string(desc.MediaType), raw, read)
}
