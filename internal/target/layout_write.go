package target

// Writes to an OCI layout. A tag is an index.json entry annotated with its name, so moving
// one rewrites index.json: under an flock on the layout directory (writers in this process
// and in others exclude each other), read, check the guard, then replace the file with a
// temporary one renamed over it, so a reader sees the old index.json or the new one, never a
// torn one. Blobs are immutable and named by digest: the index blob is written (atomically
// too) before the entry that references it. go-containerregistry's layout.Path writes files
// in place, so those two writes are ours.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/atomicfile"
)

// Ref is the layout directory of repo.
func (l *layoutTarget) Ref(repo string) string { return filepath.Join(l.root, repo) }

// Insecure is false: a layout is not reached over the network.
func (l *layoutTarget) Insecure() bool { return false }

// WriteIndex checks that every child is in the layout, writes the index blob and points tag
// at it, under the guard.
func (l *layoutTarget) WriteIndex(ctx context.Context, repo, tag string, idx *v1.IndexManifest, expect string) (v1.Descriptor, error) {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	raw, desc, err := encodeIndex(idx)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	if len(idx.Manifests) == 0 {
		// An index of nothing (a lease) needs no image in the layout first.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
		}
	}
	read := blobReader(dir)
	err = l.update(ctx, dir, tag, desc, expect, func() error {
		// As a registry does, refuse an index whose children are not there.
		for _, m := range idx.Manifests {
			b, err := read(ctx, m.Digest)
			if err != nil {
				return fmt.Errorf("child %s: %w", m.Digest, err)
			}
			if int64(len(b)) != m.Size {
				return fmt.Errorf("child %s: %d bytes, the index says %d", m.Digest, len(b), m.Size)
			}
		}
		return writeBlob(dir, desc.Digest, raw)
	})
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	return desc, nil
}

// Tag points tag at the manifest d of the layout, under the guard.
func (l *layoutTarget) Tag(ctx context.Context, repo, tag string, d v1.Hash, expect string) error {
	dir := filepath.Join(l.root, repo)
	where := "oci:" + dir + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return fmt.Errorf("tag %s: %w", where, err)
	}
	raw, err := blobReader(dir)(ctx, d)
	if err != nil {
		return fmt.Errorf("tag %s: manifest %s: %w", where, d, err)
	}
	mt, err := manifestMediaType(raw, "")
	if err != nil {
		return fmt.Errorf("tag %s: manifest %s: %w", where, d, err)
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: d}
	if err := l.update(ctx, dir, tag, desc, expect, nil); err != nil {
		return fmt.Errorf("tag %s: %w", where, err)
	}
	return nil
}

// update points tag at desc in dir/index.json if tag points at expect, under the layout's
// lock. before, if set, runs under the lock once the guard holds, before index.json changes.
func (l *layoutTarget) update(ctx context.Context, dir, tag string, desc v1.Descriptor, expect string, before func() error) error {
	im, unlock, err := lockIndex(ctx, dir, fmt.Errorf("no layout at %s (its images are written there first)", dir))
	if err != nil {
		return err
	}
	defer unlock()
	cur := ""
	for _, m := range im.Manifests { // the last entry wins, as in Inspect
		if m.Annotations[annotationRefName] == tag {
			cur = m.Digest.String()
		}
	}
	done, err := guard(tag, expect, cur, desc.Digest)
	if err != nil || done {
		return err
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	kept := im.Manifests[:0]
	for _, m := range im.Manifests {
		if m.Annotations[annotationRefName] != tag {
			kept = append(kept, m)
		}
	}
	desc.Annotations = map[string]string{annotationRefName: tag}
	im.Manifests = append(kept, desc)
	if err := writeIndexJSON(dir, im); err != nil {
		return err
	}
	l.log.Debug("tagged", "layout", dir, "tag", tag, "digest", desc.Digest.String(), "was", cur)
	return nil
}

// lockIndex takes the lock of the layout at dir and reads its index.json, for an update of
// it; unlock releases the lock. missing is the error when dir is not there.
func lockIndex(ctx context.Context, dir string, missing error) (im *v1.IndexManifest, unlock func(), err error) {
	unlock, err = lockDir(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, missing
	}
	if err != nil {
		return nil, nil, err
	}
	if im, err = readIndexJSON(dir); err != nil {
		unlock()
		return nil, nil, err
	}
	return im, unlock, nil
}

// writeIndexJSON replaces dir/index.json with im (and writes dir/oci-layout if missing). The
// caller holds the layout's lock.
func writeIndexJSON(dir string, im *v1.IndexManifest) error {
	if err := ensureLayoutFile(dir); err != nil {
		return err
	}
	b, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	return nil
}

// ensureLayoutFile writes dir/oci-layout when a layout lacks it.
func ensureLayoutFile(dir string) error {
	p := filepath.Join(dir, "oci-layout")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return atomicfile.WriteFile(p, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// writeBlob stores b, whose digest is d, in the layout at dir, unless it is there already.
func writeBlob(dir string, d v1.Hash, b []byte) error {
	p := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	if have, err := os.ReadFile(p); err == nil && verify(d, have) == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o644)
}
