package target

// Writes to a registry. The distribution API has no compare-and-swap on tags, so a guarded
// write HEADs the tag right before its PUT: another writer's PUT landing between the two is
// not detected, and the last PUT wins. Within one archmirror process the publisher serialises
// the writes that race (latest, per repo); across processes the window is one round trip,
// until leases (issue 7) close it.
//
// Writes go through the target's one authenticated transport. On a Bearer registry the first
// write to a repo is answered 401 with a push scope in the challenge (two more requests, once
// per repo and run); the transport adds that scope to its token and sends the PUT again,
// which rewind makes possible.

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteIndex HEADs tag, and PUTs the index under it when the guard holds. Nothing else is
// uploaded: the registry refuses an index whose children it does not have in the repo.
func (r *registry) WriteIndex(ctx context.Context, repo, tag string, idx *v1.IndexManifest, expect string) (v1.Descriptor, error) {
	where := r.prefix + "/" + repo + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	raw, desc, err := encodeIndex(idx)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	if err := r.put(ctx, r.reg.Repo(r.path, repo), tag, rawManifest{raw, desc.MediaType}, desc.Digest, expect); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write index %s: %w", where, err)
	}
	return desc, nil
}

// Tag reads the manifest d (from the cache when it has it), HEADs tag, and PUTs d under it
// when the guard holds.
func (r *registry) Tag(ctx context.Context, repo, tag string, d v1.Hash, expect string) error {
	where := r.prefix + "/" + repo + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return fmt.Errorf("tag %s: %w", where, err)
	}
	nrepo := r.reg.Repo(r.path, repo)
	_, opts, err := r.options(ctx)
	if err != nil {
		return fmt.Errorf("tag %s: %w", where, err)
	}
	raw, err := r.manifestIn(nrepo, d, opts)
	if err != nil {
		return fmt.Errorf("tag %s: manifest %s: %w", where, d, err)
	}
	mt, err := manifestMediaType(raw, "")
	if err != nil {
		return fmt.Errorf("tag %s: manifest %s: %w", where, d, err)
	}
	if err := r.put(ctx, nrepo, tag, rawManifest{raw, mt}, d, expect); err != nil {
		return fmt.Errorf("tag %s: %w", where, err)
	}
	return nil
}

// put PUTs m (whose digest is d) under tag if tag points at expect: the guarded write.
func (r *registry) put(ctx context.Context, repo name.Repository, tag string, m rawManifest, d v1.Hash, expect string) error {
	_, opts, err := r.options(ctx)
	if err != nil {
		return err
	}
	cur, err := r.current(ctx, repo, tag, opts)
	if err != nil {
		return err
	}
	done, err := guard(tag, expect, cur, d)
	if err != nil || done {
		return err
	}
	// The window until the PUT lands is the race the comment at the top describes.
	if err := remote.Put(repo.Tag(tag), m, opts...); err != nil {
		return r.explain(err, repo)
	}
	r.remember(d, m.raw)
	r.log.Debug("tagged", "repo", repo.RepositoryStr(), "tag", tag, "digest", d.String(), "was", cur)
	return nil
}

// current is the digest tag points at now, "" when it does not exist.
func (r *registry) current(ctx context.Context, repo name.Repository, tag string, opts []remote.Option) (string, error) {
	desc, err := remote.Head(repo.Tag(tag), opts...)
	switch {
	case err == nil:
		return desc.Digest.String(), nil
	case r.notFound(err, repo):
		return "", nil
	case incompleteHead(ctx, err):
		got, err := remote.Get(repo.Tag(tag), opts...)
		switch {
		case r.notFound(err, repo):
			return "", nil
		case err != nil:
			return "", r.explain(err, repo)
		}
		return got.Digest.String(), nil
	default:
		return "", r.explain(err, repo)
	}
}
