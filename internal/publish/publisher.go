package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/Masterminds/semver/v3"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/target"
)

// LatestTag is the tag that follows the highest stable version.
const LatestTag = "latest"

// AnnotationVersion is the index annotation that names its version. Publish sets it to
// Unit.Version; latest is decided by the one on the index latest points at.
const AnnotationVersion = "org.opencontainers.image.version"

// Annotations that mark an index entry as an attestation rather than a platform.
const (
	annotationReferenceType = "vnd.docker.reference.type"
	attestationManifest     = "attestation-manifest"
)

// Publisher publishes Units to one target.
type Publisher struct {
	t   target.Target
	log *slog.Logger

	mu    sync.Mutex
	repos map[string]*sync.Mutex // serialises latest decisions per repo
}

// Option configures New.
type Option func(*Publisher)

// WithLogger sets the logger. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *Publisher) { p.log = l } }

// New returns a Publisher writing to t.
func New(t target.Target, opts ...Option) *Publisher {
	p := &Publisher{t: t, log: slog.Default(), repos: map[string]*sync.Mutex{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish makes u.Repo:u.Version an index of u.Platforms, if it is not one already:
//
//   - complete already: Unchanged, never rewritten (images in u.Built are left unreferenced);
//   - otherwise the children it has (kept as they are, digests unchanged) and u.Built are
//     merged; a platform still missing is Incomplete and nothing is tagged (a version tag
//     never points at a partial index, and an incomplete one stays as it was);
//   - else the index (children in u.Platforms order, each with the platform of its image
//     config, u.Annotations on the index) is written, guarded by what the tag pointed at:
//     Published, or Repaired when it replaced an incomplete index.
//
// Then, unless Incomplete, latest moves to the index if u.Stable and u.Version is a strictly
// higher semver than latest's version (see Latest). If only that step fails, Publish returns
// the Result of the version, which stands, with the error.
func (p *Publisher) Publish(ctx context.Context, u Unit) (Result, error) {
	where := u.Repo + ":" + u.Version
	built, err := p.built(u)
	if err != nil {
		return Result{}, fmt.Errorf("publish %s: %w", where, err)
	}
	if len(u.Platforms) == 0 {
		return Result{}, fmt.Errorf("publish %s: no platforms", where)
	}
	res, err := p.version(ctx, u, built)
	if err != nil {
		return Result{}, fmt.Errorf("publish %s: %w", where, err)
	}
	if res.Status == Incomplete || u.KeepLatest {
		return res, nil
	}
	res.Latest, err = p.latest(ctx, u.Repo, u.Version, res.Digest, u.Stable)
	if err != nil {
		return res, fmt.Errorf("publish %s: %w", where, err)
	}
	return res, nil
}

// Latest moves repo's latest to repo:version when that version's index is complete for
// platforms and version is a strictly higher semver than latest's, as Publish does after
// publishing; for a version that needed no build this run, so that a run which stopped
// between tagging a version and moving latest is finished by the next one. version is a
// stable release (a semver pre-release is refused). It is an error for repo:version to be
// missing or incomplete; a latest that already points at it, or at a higher version, is
// success. pointsHere reports whether latest points at repo:version afterwards.
func (p *Publisher) Latest(ctx context.Context, repo, version string, platforms []platform.Platform) (pointsHere bool, err error) {
	where := repo + ":" + version
	st, err := p.t.Inspect(ctx, repo, version)
	if err != nil {
		return false, fmt.Errorf("latest %s: %w", where, err)
	}
	if !st.Exists {
		return false, fmt.Errorf("latest %s: not published", where)
	}
	if m := missing(st.Platforms, platforms); len(m) > 0 {
		return false, fmt.Errorf("latest %s: incomplete (missing %v)", where, m)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, fmt.Errorf("latest %s: %q is not a semver version: %w", where, version, err)
	}
	if v.Prerelease() != "" {
		return false, fmt.Errorf("latest %s: a pre-release never becomes latest", where)
	}
	here, err := p.latest(ctx, repo, version, st.Digest, true)
	if err != nil {
		return false, fmt.Errorf("latest %s: %w", where, err)
	}
	return here, nil
}

// built parses u.Built: normalised platform → digest.
func (p *Publisher) built(u Unit) (map[string]v1.Hash, error) {
	out := map[string]v1.Hash{}
	for ps, ds := range u.Built {
		pl, err := platform.Parse(ps)
		if err != nil {
			return nil, fmt.Errorf("built: %w", err)
		}
		d, err := v1.NewHash(ds)
		if err != nil {
			return nil, fmt.Errorf("built %s: %w", ps, err)
		}
		out[pl.String()] = d
	}
	return out, nil
}

// version publishes the version tag. A guarded write that finds the tag changed since it was
// read (another publisher) is decided again once, from what the tag holds then.
func (p *Publisher) version(ctx context.Context, u Unit, built map[string]v1.Hash) (Result, error) {
	for attempt := 0; ; attempt++ {
		st, err := p.t.Inspect(ctx, u.Repo, u.Version)
		if err != nil {
			return Result{}, err
		}
		if st.Exists && len(missing(st.Platforms, u.Platforms)) == 0 {
			p.unreferenced(u, st, built)
			return Result{Status: Unchanged, Digest: st.Digest}, nil
		}
		children, miss, err := p.merge(ctx, u, st, built)
		if err != nil {
			return Result{}, err
		}
		if len(miss) > 0 {
			p.log.Info("not tagged: platforms missing", "repo", u.Repo, "version", u.Version, "missing", miss, "current", st.Digest)
			return Result{Status: Incomplete, Digest: st.Digest, Missing: miss}, nil
		}
		idx := &v1.IndexManifest{
			SchemaVersion: 2,
			MediaType:     types.OCIImageIndex,
			Manifests:     children,
			Annotations:   annotations(u),
		}
		desc, err := p.t.WriteIndex(ctx, u.Repo, u.Version, idx, st.Digest)
		if errors.Is(err, target.ErrConflict) && attempt == 0 {
			p.log.Warn("version tag changed while publishing; deciding again", "repo", u.Repo, "version", u.Version, "err", err)
			continue
		}
		if err != nil {
			return Result{}, err
		}
		status := Published
		if st.Exists {
			status = Repaired
		}
		p.log.Info("tagged", "repo", u.Repo, "version", u.Version, "status", status, "digest", desc.Digest.String(), "was", st.Digest)
		return Result{Status: status, Digest: desc.Digest.String()}, nil
	}
}

// merge lists the index entries of u: for each wanted platform, in u.Platforms order, the
// entry the existing index has (as it is, its platform normalised), else the image built for
// it, described from its config; then the existing entries for platforms no longer wanted,
// which a repair does not drop. It returns the platforms that have neither.
func (p *Publisher) merge(ctx context.Context, u Unit, st target.State, built map[string]v1.Hash) ([]v1.Descriptor, []string, error) {
	have, order, err := existing(st)
	if err != nil {
		return nil, nil, err
	}
	var out []v1.Descriptor
	var miss []string
	wanted := map[string]bool{}
	for _, pl := range u.Platforms {
		ps := pl.Normalize().String()
		if wanted[ps] {
			continue
		}
		wanted[ps] = true
		if d, ok := have[ps]; ok {
			if b, ok := built[ps]; ok && b != d.Digest {
				p.log.Info("built image left unreferenced: the index has this platform already", "repo", u.Repo, "version", u.Version, "platform", ps, "built", b.String(), "kept", d.Digest.String())
			}
			out = append(out, d)
			continue
		}
		b, ok := built[ps]
		if !ok {
			miss = append(miss, ps)
			continue
		}
		d, err := p.t.Describe(ctx, u.Repo, b)
		if err != nil {
			return nil, nil, fmt.Errorf("built %s: %w", ps, err)
		}
		if got := descPlatform(d); got != ps {
			return nil, nil, fmt.Errorf("built %s: image %s is for %s", ps, b, got)
		}
		out = append(out, d)
	}
	for ps := range built {
		if !wanted[ps] {
			p.log.Warn("built image for a platform the unit does not want: left out", "repo", u.Repo, "version", u.Version, "platform", ps)
		}
	}
	for _, ps := range order {
		if !wanted[ps] {
			p.log.Info("keeping a platform no longer wanted in the repaired index", "repo", u.Repo, "version", u.Version, "platform", ps)
			out = append(out, have[ps])
		}
	}
	return out, miss, nil
}

// existing lists the platform entries of what the version tag points at, by normalised
// platform, and the platforms in their order there: an index's entries (attestations and
// entries without a known platform are not kept), or a single image as the one entry.
func existing(st target.State) (map[string]v1.Descriptor, []string, error) {
	have := map[string]v1.Descriptor{}
	var order []string
	if !st.Exists {
		return have, nil, nil
	}
	mt := types.MediaType(st.MediaType)
	if !mt.IsIndex() {
		if len(st.Platforms) == 1 {
			d, err := v1.NewHash(st.Digest)
			if err != nil {
				return nil, nil, err
			}
			pl, _ := platform.Parse(st.Platforms[0])
			have[st.Platforms[0]] = v1.Descriptor{MediaType: mt, Size: int64(len(st.Manifest)), Digest: d, Platform: v1Platform(pl)}
			order = append(order, st.Platforms[0])
		}
		return have, order, nil
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(st.Manifest))
	if err != nil {
		return nil, nil, fmt.Errorf("index %s: %w", st.Digest, err)
	}
	for _, m := range im.Manifests {
		if m.Annotations[annotationReferenceType] == attestationManifest || m.Platform == nil {
			continue
		}
		pl, err := platform.FromParts(m.Platform.OS, m.Platform.Architecture, m.Platform.Variant)
		if err != nil {
			continue
		}
		ps := pl.String()
		if _, dup := have[ps]; dup {
			continue
		}
		m.Platform = v1Platform(pl)
		have[ps] = m
		order = append(order, ps)
	}
	return have, order, nil
}

// unreferenced logs the built images a complete version does not use.
func (p *Publisher) unreferenced(u Unit, st target.State, built map[string]v1.Hash) {
	if len(built) == 0 {
		return
	}
	have, _, err := existing(st)
	if err != nil {
		return
	}
	for ps, b := range built {
		if d, ok := have[ps]; !ok || d.Digest != b {
			p.log.Info("version already complete: built image left unreferenced", "repo", u.Repo, "version", u.Version, "platform", ps, "built", b.String(), "index", st.Digest)
		}
	}
}

// latest moves repo's latest to digest (the index of version) when stable and version is a
// strictly higher semver than the one latest has, and reports whether latest points at
// digest afterwards. A latest whose index has no version annotation (or none that parses), or
// that does not exist, is absent. The decision is guarded by latest's digest; a conflict is
// read and decided again once. Decisions are serialised per repo within the process.
func (p *Publisher) latest(ctx context.Context, repo, version, digest string, stable bool) (bool, error) {
	unlock := p.lock(repo)
	defer unlock()
	d, err := v1.NewHash(digest)
	if err != nil {
		return false, fmt.Errorf("latest: %w", err)
	}
	var v *semver.Version
	if stable {
		if v, err = semver.NewVersion(version); err != nil {
			p.log.Warn("latest not moved: the version is not semver", "repo", repo, "version", version, "err", err)
		}
	}
	for attempt := 0; ; attempt++ {
		cur, err := p.t.Inspect(ctx, repo, LatestTag)
		if err != nil {
			return false, fmt.Errorf("latest: %w", err)
		}
		if cur.Exists && cur.Digest == digest {
			return true, nil
		}
		if v == nil {
			return false, nil
		}
		if cv := latestVersion(cur); cv != nil && Latest([]string{version}, cv.Original(), nil) != version {
			p.log.Debug("latest stays", "repo", repo, "latest", cv.Original(), "version", version)
			return false, nil
		}
		expect := ""
		if cur.Exists {
			expect = cur.Digest
		}
		err = p.t.Tag(ctx, repo, LatestTag, d, expect)
		if err == nil {
			p.log.Info("latest moved", "repo", repo, "version", version, "digest", digest, "was", cur.Annotations[AnnotationVersion])
			return true, nil
		}
		if !errors.Is(err, target.ErrConflict) || attempt > 0 {
			return false, fmt.Errorf("latest: %w", err)
		}
		p.log.Warn("latest changed while moving it; deciding again", "repo", repo, "err", err)
	}
}

// latestVersion is the version of the index latest points at, nil when latest is absent.
func latestVersion(st target.State) *semver.Version {
	if !st.Exists {
		return nil
	}
	v, err := semver.NewVersion(st.Annotations[AnnotationVersion])
	if err != nil {
		return nil
	}
	return v
}

func (p *Publisher) lock(repo string) func() {
	p.mu.Lock()
	m, ok := p.repos[repo]
	if !ok {
		m = &sync.Mutex{}
		p.repos[repo] = m
	}
	p.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// annotations are u's, with the version set to u.Version.
func annotations(u Unit) map[string]string {
	a := maps.Clone(u.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationVersion] = u.Version
	return a
}

// missing lists the platforms of want that have is without, normalised.
func missing(have []string, want []platform.Platform) []string {
	var out []string
	for _, w := range want {
		s := w.Normalize().String()
		if !slices.Contains(have, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func descPlatform(d v1.Descriptor) string {
	if d.Platform == nil {
		return ""
	}
	return d.Platform.OS + "/" + d.Platform.Architecture + variant(d.Platform.Variant)
}

func v1Platform(p platform.Platform) *v1.Platform {
	return &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant}
}

func variant(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}
