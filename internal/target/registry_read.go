package target

// Reads from a registry: images, manifests, blobs and descriptors, by digest. Manifests and
// image configs come from the cache when it has them (see cache.go); everything else is a GET
// through the target's one transport.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/bounded"
)

// Image reads the manifest d (from the cache when it has it) and its config; layers are
// GETs when read.
func (r *registry) Image(ctx context.Context, repo string, d v1.Hash) (v1.Image, error) {
	return byDigest(ctx, r, "image", repo, d, func(nrepo name.Repository, rt http.RoundTripper, opts []remote.Option) (v1.Image, error) {
		raw, err := r.manifestIn(nrepo, d, opts)
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		config := func(ctx context.Context, h v1.Hash) ([]byte, error) { return r.config(ctx, rt, nrepo, h) }
		open := func(desc v1.Descriptor) (io.ReadCloser, error) {
			// remote's reader checks the content against the digest at EOF.
			rc, err := r.openBlob(nrepo, desc.Digest, opts)
			if err != nil {
				return nil, fmt.Errorf("image %s: blob %s: %w", r.where(repo, d), desc.Digest, err)
			}
			return rc, nil
		}
		return newImage(ctx, d, raw, config, open)
	})
}

// Manifest reads the manifest d, from the cache or else by GET.
func (r *registry) Manifest(ctx context.Context, repo string, d v1.Hash) ([]byte, error) {
	return byDigest(ctx, r, "manifest", repo, d, func(nrepo name.Repository, _ http.RoundTripper, opts []remote.Option) ([]byte, error) {
		return r.manifestIn(nrepo, d, opts)
	})
}

// manifestIn is manifest, saying so when the repo does not have d.
func (r *registry) manifestIn(repo name.Repository, d v1.Hash, opts []remote.Option) ([]byte, error) {
	raw, err := r.manifest(repo, d, opts)
	if errors.Is(err, errManifestUnknown) {
		err = fmt.Errorf("%w (no such manifest in the repo)", err)
	}
	return raw, err
}

// Blob GETs the blob d, reading at most max bytes of it.
func (r *registry) Blob(ctx context.Context, repo string, d v1.Hash, max int64) ([]byte, error) {
	return byDigest(ctx, r, "blob", repo, d, func(nrepo name.Repository, _ http.RoundTripper, opts []remote.Option) ([]byte, error) {
		rc, err := r.openBlob(nrepo, d, opts)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := bounded.Read(rc, max, "")
		if err == nil {
			err = verify(d, b)
		}
		if err != nil {
			return nil, fmt.Errorf("GET: %w", err)
		}
		return b, nil
	})
}

// byDigest is a read of d in repo (Image, Manifest, Blob, Referrers): it checks what is asked
// for, and read's error starts with noun and where it read ("blob host/ns/repo@sha256:…: …").
func byDigest[T any](ctx context.Context, r *registry, noun, repo string, d v1.Hash, read func(repo name.Repository, rt http.RoundTripper, opts []remote.Option) (T, error)) (T, error) {
	var v T
	err := checkBlobRef(repo, d)
	if err == nil {
		var rt http.RoundTripper
		var opts []remote.Option
		if rt, opts, err = r.options(ctx); err == nil {
			v, err = read(r.reg.Repo(r.path, repo), rt, opts)
		}
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s %s: %w", noun, r.where(repo, d), err)
	}
	return v, nil
}

// where is the image d of repo as errors name it.
func (r *registry) where(repo string, d v1.Hash) string {
	return r.prefix + "/" + repo + "@" + d.String()
}

// openBlob GETs the blob d of repo.
func (r *registry) openBlob(repo name.Repository, d v1.Hash, opts []remote.Option) (io.ReadCloser, error) {
	l, err := remote.Layer(repo.Digest(d.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	switch {
	case r.notFound(err, repo):
		return nil, fmt.Errorf("GET: 404 Not Found (no such blob in the repo)")
	case err != nil:
		return nil, r.explain(err, repo)
	}
	return rc, nil
}

// Describe GETs the manifest d and its config (each from the cache when it has them).
func (r *registry) Describe(ctx context.Context, repo string, d v1.Hash) (v1.Descriptor, error) {
	where := r.where(repo, d)
	if err := checkRepo(repo); err != nil {
		return v1.Descriptor{}, fmt.Errorf("describe %s: %w", where, err)
	}
	desc, err := r.describeChild(ctx, r.reg.Repo(r.path, repo), d)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("describe %s: %w", where, err)
	}
	return desc, nil
}

func (r *registry) describeChild(ctx context.Context, repo name.Repository, d v1.Hash) (v1.Descriptor, error) {
	rt, opts, err := r.options(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := r.manifestIn(repo, d, opts)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	config := func(ctx context.Context, d v1.Hash) ([]byte, error) { return r.config(ctx, rt, repo, d) }
	return imageDescriptor(ctx, d, "", raw, config)
}
